"""httpx: a transport that wraps a transport.

``MeshTransport`` (``AsyncMeshTransport`` for ``httpx.AsyncClient``) sits where httpx expects a
transport and wraps a real one (by default ``httpx.HTTPTransport(retries=0)``: httpcore's own
connect retries would double the mesh's). For each request, the URL's host names the upstream
(``http://payments/charge``); every attempt goes to the endpoint the policies pick, with the
user's ``Host`` header, the attempt's timeout (``request.extensions["timeout"]``, never longer
than the client's own) and the :data:`~meshspec_runtime.deadline.TIMEOUT_HEADER`.

A call that ends without an answer raises a :class:`MeshTransportError`: an
``httpx.TransportError`` (of the last attempt's own class, ``httpx.ConnectError`` for refused
connections everywhere) that is also a ``CallFailed``. A call whose last attempt was answered
(a 503 after the retries) returns that response, as httpx would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import httpx

from meshspec_runtime.deadline import TIMEOUT_HEADER, format_timeout_header
from meshspec_runtime.drivers.classify import CallFailed
from meshspec_runtime.errors import Rule, answer
from meshspec_runtime.mesh import MeshClosedError, MeshError
from meshspec_runtime.policy.outcome import Outcome, OutcomeKind

if TYPE_CHECKING:
    from meshspec_runtime.bundle import Endpoint
    from meshspec_runtime.mesh import Mesh, MeshUpstream

_TIMEOUT_KEYS: Final = ("connect", "read", "write", "pool")


class MissingHostError(MeshError, httpx.UnsupportedProtocol):
    """A request URL without a host: meshspec cannot tell which upstream it is for."""


class MeshTransportError(httpx.TransportError, CallFailed):
    """The mesh ended the call without an answer: an ``httpx.TransportError`` (raised as a
    subclass of the last attempt's own httpx error class when there was one) and a
    ``CallFailed`` (``reason``, ``last``); the last attempt's exception is ``__cause__``."""

    def __init__(self, failed: CallFailed, request: httpx.Request) -> None:
        # Not httpx's __init__: its super().__init__(message) would reach CallFailed's.
        Exception.__init__(self, str(failed))
        self.request = request
        self.reason = failed.reason
        self.last = failed.last
        self.result = failed.result


class MeshTransport(httpx.BaseTransport):
    """Sends each request through the policies of the upstream its URL's host names."""

    def __init__(self, mesh: Mesh, transport: httpx.BaseTransport | None = None) -> None:
        self._mesh = mesh
        self._inner = transport if transport is not None else httpx.HTTPTransport(retries=0)
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        handle, key = _route(self._mesh, request, closed=self._closed)
        request.read()  # buffered once: every attempt resends the same bytes
        inner = self._inner
        as_sent = _AsSent(request, handle.policies.hedge is not None)

        def attempt(endpoint: Endpoint, timeout: float) -> httpx.Response:
            return inner.handle_request(as_sent.to(endpoint, timeout))

        try:
            return handle.call(attempt, key=key, discard=_close)
        except CallFailed as failed:
            if isinstance(failed.result, httpx.Response):
                return failed.result
            raise _failure(failed, request) from failed.__cause__
        finally:
            as_sent.restore()

    def close(self) -> None:
        self._closed = True
        self._inner.close()


class AsyncMeshTransport(httpx.AsyncBaseTransport):
    """:class:`MeshTransport` for ``httpx.AsyncClient``."""

    def __init__(self, mesh: Mesh, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._mesh = mesh
        self._inner = transport if transport is not None else httpx.AsyncHTTPTransport(retries=0)
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        handle, key = _route(self._mesh, request, closed=self._closed)
        await request.aread()  # buffered once: every attempt resends the same bytes
        inner = self._inner
        as_sent = _AsSent(request, handle.policies.hedge is not None)

        async def attempt(endpoint: Endpoint, timeout: float) -> httpx.Response:
            return await inner.handle_async_request(as_sent.to(endpoint, timeout))

        try:
            return await handle.call_async(attempt, key=key, discard=_aclose)
        except CallFailed as failed:
            if isinstance(failed.result, httpx.Response):
                return failed.result
            raise _failure(failed, request) from failed.__cause__
        finally:
            as_sent.restore()

    async def aclose(self) -> None:
        self._closed = True
        await self._inner.aclose()


def client(mesh: Mesh, upstream: str | None, **kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` over a :class:`MeshTransport` (wrapping ``transport=`` when given).

    With ``upstream``, relative URLs go to ``http://<upstream>``. Unless given, ``timeout``
    is None (the bundle's timeouts rule) and ``trust_env`` False (a proxy from the environment
    would take requests away from the mesh's transport).
    """
    inner = kwargs.pop("transport", None)
    _client_defaults(mesh, upstream, kwargs)
    return httpx.Client(transport=MeshTransport(mesh, inner), **kwargs)


def async_client(mesh: Mesh, upstream: str | None, **kwargs: Any) -> httpx.AsyncClient:
    """:func:`client` for asyncio: an ``httpx.AsyncClient`` over an :class:`AsyncMeshTransport`."""
    inner = kwargs.pop("transport", None)
    _client_defaults(mesh, upstream, kwargs)
    return httpx.AsyncClient(transport=AsyncMeshTransport(mesh, inner), **kwargs)


def _client_defaults(mesh: Mesh, upstream: str | None, kwargs: dict[str, Any]) -> None:
    if upstream is not None:
        mesh.upstream(upstream)  # an unknown name fails here, not at the first request
        kwargs.setdefault("base_url", f"http://{upstream}")
    kwargs.setdefault("timeout", None)
    kwargs.setdefault("trust_env", False)


def _route(mesh: Mesh, request: httpx.Request, *, closed: bool) -> tuple[MeshUpstream, str | None]:
    """The upstream the request is for, and its hash key (the ``hash_on`` header's value)."""
    if closed:
        raise MeshClosedError(f"meshspec httpx transport of {mesh.describe()} is closed")
    host = request.url.host
    if not host:
        raise MissingHostError(
            f"request URL {str(request.url)!r} has no host: name the upstream in it "
            "(http://payments/charge) or give the client an upstream",
            request=request,
        )
    handle = mesh.upstream(host)
    hash_on = handle.policies.policy.load_balancer.hash_on
    return handle, (request.headers.get(hash_on) if hash_on is not None else None)


class _AsSent:
    """The user's request, pointed at each attempt's endpoint in place (attempts run one
    after the other; a copy would cost more than the rest of the call; on a hedged edge, whose
    attempts overlap, each attempt gets a copy instead) and given back its URL
    and extensions when the call ends: ``response.request``, redirects and auth flows see the
    URL the user wrote."""

    __slots__ = ("extensions", "hedged", "request", "url")

    def __init__(self, request: httpx.Request, hedged: bool) -> None:
        self.request = request
        self.url = request.url
        self.extensions = request.extensions
        self.hedged = hedged

    def to(self, endpoint: Endpoint, timeout: float) -> httpx.Request:
        request = self.request
        extensions = dict(self.extensions)
        extensions["timeout"] = _timeouts(extensions.get("timeout"), timeout)
        if self.url.scheme == "https":
            extensions.setdefault("sni_hostname", self.url.host)  # verify the name, not the IP
        url = _endpoint_url(self.url, endpoint)
        header = format_timeout_header(timeout)
        if self.hedged:  # attempts in flight together: each sends a request of its own
            headers = request.headers.copy()
            headers[TIMEOUT_HEADER] = header
            return httpx.Request(
                request.method, url, headers=headers, stream=request.stream, extensions=extensions
            )
        request.url = url
        request.headers[TIMEOUT_HEADER] = header
        request.extensions = extensions
        return request

    def restore(self) -> None:
        request = self.request
        request.url = self.url
        request.extensions = self.extensions
        # The timeout header stays: ``response.request`` shows what the last attempt sent (and
        # removing it would cost as much as the rest of the bookkeeping).


_ENDPOINT_URLS: dict[tuple[bytes, bytes, str, int], httpx.URL] = {}
_MAX_ENDPOINT_URLS: Final = 4096


def _endpoint_url(url: httpx.URL, endpoint: Endpoint) -> httpx.URL:
    """``url`` with the endpoint's address and port (what the connection pool reads: scheme,
    host, port, path and query). Cached: building an ``httpx.URL`` parses and validates it,
    and a service calls the same few URLs again and again."""
    key = (url.raw_scheme, url.raw_path, endpoint.address, endpoint.port)
    made = _ENDPOINT_URLS.get(key)
    if made is None:
        made = url.copy_with(host=endpoint.address, port=endpoint.port)
        if len(_ENDPOINT_URLS) >= _MAX_ENDPOINT_URLS:
            _ENDPOINT_URLS.clear()
        _ENDPOINT_URLS[key] = made
    return made


def _timeouts(configured: object, timeout: float) -> dict[str, float]:
    """The client's timeouts for this request (httpx passes a dict), each capped at the
    attempt's. Spelled out: this runs on every attempt."""
    if type(configured) is not dict:
        return dict.fromkeys(_TIMEOUT_KEYS, timeout)
    connect = configured.get("connect")
    read = configured.get("read")
    write = configured.get("write")
    pool = configured.get("pool")
    return {
        "connect": timeout if connect is None or connect > timeout else connect,
        "read": timeout if read is None or read > timeout else read,
        "write": timeout if write is None or write > timeout else write,
        "pool": timeout if pool is None or pool > timeout else pool,
    }


def _close(response: httpx.Response) -> None:
    response.close()


async def _aclose(response: httpx.Response) -> None:
    """An answer the call does not return (retried, or a hedge's loser): closed unread, its
    connection leaves the pool instead of staying checked out until the client closes."""
    await response.aclose()


_FAILURE_TYPES: dict[type[httpx.TransportError], type[MeshTransportError]] = {}


def _failure(failed: CallFailed, request: httpx.Request) -> MeshTransportError:
    """A :class:`MeshTransportError`, of the last attempt's httpx error class when it raised
    one (``except httpx.ConnectError`` keeps working as without the mesh)."""
    cause = failed.__cause__
    kind: type[httpx.TransportError]
    if isinstance(cause, httpx.TransportError) and type(cause).__module__.startswith("httpx"):
        kind = type(cause)
    elif isinstance(cause, TimeoutError):  # asyncio.wait_for ended the attempt before httpx
        kind = httpx.TimeoutException
    else:
        return MeshTransportError(failed, request)
    made = _FAILURE_TYPES.get(kind)
    if made is None:
        made = type(f"Mesh{kind.__name__}", (kind, MeshTransportError), {"__module__": __name__})
        _FAILURE_TYPES[kind] = made
    return made(failed, request)


def _status_error(error: BaseException, latency: float) -> Outcome | None:
    assert isinstance(error, httpx.HTTPStatusError)
    return answer(latency, error.response.status_code)


def error_rules() -> Mapping[type[BaseException], Rule]:
    """httpx's errors: the request never left (refused, DNS, connect timeout) -> connect-failure;
    read/write/pool timeouts -> timeout; the connection broke mid-exchange (read/write errors,
    a server that closed without answering) -> reset; ``raise_for_status()`` -> its answer.
    Anything else (a local protocol error, an unsupported scheme) is an error, not retried."""
    return {
        httpx.ConnectError: OutcomeKind.CONNECT_FAILURE,
        httpx.ConnectTimeout: OutcomeKind.CONNECT_FAILURE,
        httpx.TimeoutException: OutcomeKind.TIMEOUT,
        httpx.NetworkError: OutcomeKind.RESET,
        httpx.RemoteProtocolError: OutcomeKind.RESET,
        httpx.LocalProtocolError: OutcomeKind.ERROR,
        httpx.HTTPStatusError: _status_error,
    }
