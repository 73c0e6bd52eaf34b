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

The steps of each request are in ``integrations.httpx_send``, compiled; this module's classes,
which users may subclass, stay plain Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from meshspec_runtime.drivers.classify import CallFailed
from meshspec_runtime.errors import Rule, answer
from meshspec_runtime.integrations.httpx_send import send, send_async, upstream_of
from meshspec_runtime.mesh import MeshClosedError, MeshError
from meshspec_runtime.policy.outcome import Outcome, OutcomeKind

if TYPE_CHECKING:
    from meshspec_runtime.mesh import Mesh


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
        if self._closed:
            raise _closed_error(self._mesh)
        handle = upstream_of(self._mesh, request)
        if handle is None:
            raise _missing_host(request)
        try:
            response: httpx.Response = send(handle, self._inner, request)
        except CallFailed as failed:
            if isinstance(failed.result, httpx.Response):
                return failed.result
            raise _failure(failed, request) from failed.__cause__
        return response

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
        if self._closed:
            raise _closed_error(self._mesh)
        handle = upstream_of(self._mesh, request)
        if handle is None:
            raise _missing_host(request)
        try:
            response: httpx.Response = await send_async(handle, self._inner, request)
        except CallFailed as failed:
            if isinstance(failed.result, httpx.Response):
                return failed.result
            raise _failure(failed, request) from failed.__cause__
        return response

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


def _closed_error(mesh: Mesh) -> MeshClosedError:
    return MeshClosedError(f"meshspec httpx transport of {mesh.describe()} is closed")


def _missing_host(request: httpx.Request) -> MissingHostError:
    return MissingHostError(
        f"request URL {str(request.url)!r} has no host: name the upstream in it "
        "(http://payments/charge) or give the client an upstream",
        request=request,
    )


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
