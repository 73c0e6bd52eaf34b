"""requests: an ``HTTPAdapter`` that sends each request through its upstream's policies.

``MeshAdapter`` is mounted on ``http://`` and ``https://``; the URL's host names the upstream
(``http://payments/charge``). Each attempt is ``HTTPAdapter.send`` of the same prepared request
pointed at the endpoint the policies picked, with the user's ``Host`` header, the attempt's
timeout (never longer than the one the user passed) and the
:data:`~meshspec_runtime.deadline.TIMEOUT_HEADER`. urllib3's own retries are off
(``Retry(total=0, read=False)``, requests' default, set explicitly).

A call that ends without an answer raises a :class:`MeshConnectionError`: a
``requests.ConnectionError`` (and, when the last attempt raised one, a subclass of that
requests error's own class: ``requests.ReadTimeout`` after a hung instance) that is also a
``CallFailed``. A call whose last attempt was answered (a 503 after the retries) returns that
response, as requests would.

The steps of each request are in ``integrations.requests_send``, compiled; this module's
classes, which users may subclass, stay plain Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import requests
import requests.adapters
import requests.exceptions
import urllib3.exceptions
from urllib3.util import Retry
from urllib3.util import Timeout as Urllib3Timeout

from meshspec_runtime.drivers.classify import CallFailed
from meshspec_runtime.errors import ERRORS, Rule, answer, outcome
from meshspec_runtime.integrations.requests_send import send, target_of
from meshspec_runtime.mesh import MeshClosedError, MeshError
from meshspec_runtime.policy.outcome import Outcome, OutcomeKind

if TYPE_CHECKING:
    from meshspec_runtime.mesh import Mesh

NO_RETRIES: Final = Retry(total=0, read=False, redirect=False)
"""urllib3 gives up at the first failure (``read=False``: a read timeout stays a timeout)."""


class MissingHostError(MeshError, requests.exceptions.InvalidURL):
    """A request URL without a host: meshspec cannot tell which upstream it is for."""


class MeshConnectionError(requests.ConnectionError, CallFailed):
    """The mesh ended the call without an answer: a ``requests.ConnectionError`` and a
    ``CallFailed`` (``reason``, ``last``); the last attempt's exception is ``__cause__``."""

    def __init__(self, failed: CallFailed, request: requests.PreparedRequest) -> None:
        requests.ConnectionError.__init__(self, str(failed), request=request)
        self.reason = failed.reason
        self.last = failed.last
        self.result = failed.result


class MeshAdapter(requests.adapters.HTTPAdapter):
    """An ``HTTPAdapter`` whose ``send`` drives the call through the mesh."""

    def __init__(self, mesh: Mesh, **kwargs: Any) -> None:
        kwargs["max_retries"] = NO_RETRIES
        super().__init__(**kwargs)
        self._mesh = mesh
        self._closed = False

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | Urllib3Timeout | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        if self._closed:
            raise MeshClosedError(f"meshspec requests adapter of {self._mesh.describe()} is closed")
        url = request.url or ""
        target = target_of(url)
        if target is None:
            raise MissingHostError(
                f"request URL {url!r} has no host: name the upstream in it "
                "(http://payments/charge)",
                request=request,
            )
        handle = self._mesh.upstream(target.upstream)
        try:
            response: requests.Response = send(
                handle, super().send, target, request, stream, timeout, verify, cert, proxies
            )
        except CallFailed as failed:
            if not isinstance(failed.result, requests.Response):
                raise _failure(failed, request) from failed.__cause__
            response = failed.result
        response.url = url
        return response

    def close(self) -> None:
        self._closed = True
        super().close()


class MeshSession(requests.Session):
    """A ``requests.Session`` with the :class:`MeshAdapter` mounted; with ``base_url``, a URL
    starting with ``/`` is relative to it (requests has no base URL of its own)."""

    def __init__(self, mesh: Mesh, base_url: str | None = None) -> None:
        super().__init__()
        self.base_url = base_url
        # A proxy from the environment would take requests away from the adapter's endpoints.
        self.trust_env = False
        adapter = MeshAdapter(mesh)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        # Where every request's URL is read (``request``, ``get``, ... and a user's own call);
        # cheaper than overriding ``request``, whose keyword arguments would be passed on again.
        url = request.url
        if self.base_url is None or not isinstance(url, str) or not url.startswith("/"):
            return super().prepare_request(request)
        request.url = self.base_url + url
        try:
            return super().prepare_request(request)
        finally:
            request.url = url  # the user's Request as they made it


def session(mesh: Mesh, upstream: str | None) -> requests.Session:
    """A :class:`MeshSession`; with ``upstream``, ``session.get("/path")`` goes to it."""
    if upstream is not None:
        mesh.upstream(upstream)  # an unknown name fails here, not at the first request
    return MeshSession(mesh, f"http://{upstream}" if upstream is not None else None)


_FAILURE_TYPES: dict[type[requests.RequestException], type[MeshConnectionError]] = {}


def _failure(failed: CallFailed, request: requests.PreparedRequest) -> MeshConnectionError:
    """A :class:`MeshConnectionError`, also of the last attempt's requests error class when it
    raised one (``except requests.ReadTimeout`` keeps working as without the mesh)."""
    cause = failed.__cause__
    if not (
        isinstance(cause, requests.RequestException)
        and type(cause).__module__.startswith("requests")
    ):
        return MeshConnectionError(failed, request)
    kind = type(cause)
    if issubclass(MeshConnectionError, kind):  # requests.ConnectionError itself
        return MeshConnectionError(failed, request)
    made = _FAILURE_TYPES.get(kind)
    if made is None:
        made = type(f"Mesh{kind.__name__}", (kind, MeshConnectionError), {"__module__": __name__})
        _FAILURE_TYPES[kind] = made
    return made(failed, request)


def _wrapped(error: BaseException, latency: float) -> Outcome | None:
    """What the urllib3 error a requests error wraps stands for (requests raises inside an
    ``except``, so the wrapped error is its first argument, not its ``__cause__``)."""
    inner = error.args[0] if error.args else None
    if isinstance(inner, urllib3.exceptions.MaxRetryError):
        inner = inner.reason
    return ERRORS.known(inner, latency) if isinstance(inner, BaseException) else None


def _connection_error(error: BaseException, latency: float) -> Outcome | None:
    """Refused/DNS/reset as urllib3 reported it; a connection error it did not detail broke
    mid-exchange (reset)."""
    made = _wrapped(error, latency)
    return made if made is not None else outcome(OutcomeKind.RESET, latency, None, None)


def _protocol_error(error: BaseException, latency: float) -> Outcome | None:
    """urllib3's "Connection aborted." carries the socket error as its second argument."""
    for arg in reversed(error.args):
        if isinstance(arg, BaseException):
            made = ERRORS.known(arg, latency)
            if made is not None:
                return made
    return outcome(OutcomeKind.RESET, latency, None, None)


def _max_retry_error(error: BaseException, latency: float) -> Outcome | None:
    assert isinstance(error, urllib3.exceptions.MaxRetryError)
    reason = error.reason
    return ERRORS.known(reason, latency) if reason is not None else None


def _status_error(error: BaseException, latency: float) -> Outcome | None:
    assert isinstance(error, requests.HTTPError)
    response = error.response
    return answer(latency, response.status_code) if response is not None else None


def error_rules() -> Mapping[type[BaseException], Rule]:
    """requests' and urllib3's errors: the request never left (refused, DNS, connect timeout)
    -> connect-failure; read timeouts -> timeout; the connection broke mid-exchange -> reset;
    ``raise_for_status()`` -> its answer; TLS and proxy failures, bad URLs -> error."""
    return {
        requests.ConnectTimeout: OutcomeKind.CONNECT_FAILURE,
        requests.ReadTimeout: OutcomeKind.TIMEOUT,
        requests.Timeout: OutcomeKind.TIMEOUT,
        requests.exceptions.SSLError: OutcomeKind.ERROR,
        requests.exceptions.ProxyError: OutcomeKind.ERROR,
        requests.ConnectionError: _connection_error,
        requests.exceptions.ChunkedEncodingError: OutcomeKind.RESET,
        requests.HTTPError: _status_error,
        urllib3.exceptions.NewConnectionError: OutcomeKind.CONNECT_FAILURE,
        urllib3.exceptions.ConnectTimeoutError: OutcomeKind.CONNECT_FAILURE,
        urllib3.exceptions.ReadTimeoutError: OutcomeKind.TIMEOUT,
        urllib3.exceptions.TimeoutError: OutcomeKind.TIMEOUT,
        urllib3.exceptions.SSLError: OutcomeKind.ERROR,
        urllib3.exceptions.ProxyError: OutcomeKind.ERROR,
        urllib3.exceptions.ProtocolError: _protocol_error,
        urllib3.exceptions.MaxRetryError: _max_retry_error,
    }
