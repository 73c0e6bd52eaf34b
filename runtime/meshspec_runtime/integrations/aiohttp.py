"""aiohttp: a client middleware that sends every request through the mesh.

``session(mesh, upstream)`` builds a ``ClientSession`` whose innermost middleware
(:class:`MeshMiddleware`) reads the upstream from the URL's host (``http://payments/charge``),
and drives the call machine: each attempt points the request at the picked endpoint's
``address:port`` (the ``Host`` header keeps the name the user wrote), carries the attempt's
timeout in :data:`~meshspec_runtime.deadline.TIMEOUT_HEADER` and is bounded by it (the asyncio
driver's ``wait_for``: a hung instance is a timeout). aiohttp calls a middleware's handler once
per attempt by design; its own one-shot retry of a stale keep-alive connection wraps the
middleware and never sees an error it retries (:class:`MeshClientError` is not one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import payload

from meshspec_runtime.deadline import TIMEOUT_HEADER, format_timeout_header
from meshspec_runtime.drivers.classify import CallFailed
from meshspec_runtime.errors import Rule, answer
from meshspec_runtime.policy.call import Fail
from meshspec_runtime.policy.outcome import Outcome, OutcomeKind

if TYPE_CHECKING:
    from meshspec_runtime.bundle import Endpoint
    from meshspec_runtime.mesh import Mesh


class MeshClientError(aiohttp.ClientConnectionError, CallFailed):
    """The mesh ended the call without a response (breaker open, no endpoint, every attempt
    refused or timed out...): an ``aiohttp.ClientConnectionError`` for existing handlers, and a
    ``CallFailed`` with ``reason`` and ``last``. The last attempt's exception is ``__cause__``."""

    def __init__(self, failed: CallFailed) -> None:
        CallFailed.__init__(self, Fail(failed.reason, failed.last), failed.result)


class BodyNotReplayableError(aiohttp.ClientError):
    """A retry was due but the request body was consumed by the previous attempt (an
    unseekable file object): pass bytes or an async iterable, which are buffered."""


class MeshMiddleware:
    """The client middleware: one logical request in, attempts through the policies out."""

    def __init__(self, mesh: Mesh) -> None:
        self._mesh = mesh

    async def __call__(
        self, request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        target = request.url
        upstream = self._mesh.upstream(target.raw_host or "")  # aiohttp refuses hostless URLs
        hash_on = upstream.policies.policy.load_balancer.hash_on
        key = request.headers.get(hash_on) if hash_on is not None else None
        body = request.body
        if isinstance(body, payload.AsyncIterablePayload):
            await body.as_bytes()  # caches the chunks, which every attempt then sends
        attempts = 0

        async def attempt(endpoint: Endpoint, timeout: float) -> aiohttp.ClientResponse:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and isinstance(body, payload.Payload) and body.consumed:
                raise BodyNotReplayableError(
                    f"cannot retry {request.method} {target}: its body was consumed by the "
                    "previous attempt (an unseekable file); send bytes or an async iterable"
                )
            request.url = target.with_host(endpoint.address).with_port(endpoint.port)
            request.headers[TIMEOUT_HEADER] = format_timeout_header(timeout)
            return await handler(request)

        try:
            return await upstream.call_async(attempt, key=key, discard=_close)
        except CallFailed as failed:
            if isinstance(failed.result, aiohttp.ClientResponse):
                return failed.result  # e.g. the last 503: returned, as without the mesh
            raise MeshClientError(failed) from failed.__cause__
        finally:
            request.url = target


def _close(response: aiohttp.ClientResponse) -> None:
    """A retried answer: close it, so its connection is not left half-read in the pool."""
    response.close()


def session(mesh: Mesh, upstream: str | None, **kwargs: Any) -> aiohttp.ClientSession:
    """A ``ClientSession`` whose requests go through ``mesh``; with ``upstream``, relative URLs
    go to it (``base_url``). Middlewares in ``kwargs`` run before the mesh's, once per request.
    """
    if upstream is not None:
        mesh.upstream(upstream)  # an unknown name fails here, not at the first request
        kwargs.setdefault("base_url", f"http://{upstream}/")
    middlewares = (*kwargs.pop("middlewares", ()), MeshMiddleware(mesh))
    return aiohttp.ClientSession(middlewares=middlewares, **kwargs)


def _response_error(error: BaseException, latency: float) -> Outcome | None:
    assert isinstance(error, aiohttp.ClientResponseError)
    return answer(latency, error.status) if error.status > 0 else None


def error_rules() -> Mapping[type[BaseException], Rule]:
    return {
        # never connected: refused, DNS, TLS handshake, connect timeout
        aiohttp.ClientConnectorError: OutcomeKind.CONNECT_FAILURE,
        aiohttp.ConnectionTimeoutError: OutcomeKind.CONNECT_FAILURE,
        # connected, no answer in time (ClientTimeout.sock_read / total)
        aiohttp.ServerTimeoutError: OutcomeKind.TIMEOUT,
        # the connection broke mid-request or mid-response
        aiohttp.ServerDisconnectedError: OutcomeKind.RESET,
        aiohttp.ClientConnectionResetError: OutcomeKind.RESET,
        aiohttp.ClientOSError: OutcomeKind.RESET,
        aiohttp.ClientPayloadError: OutcomeKind.RESET,
        # raise_for_status(): an answer with its status
        aiohttp.ClientResponseError: _response_error,
    }
