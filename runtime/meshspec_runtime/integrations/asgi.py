"""ASGI middleware that reads the caller's deadline, so calls made while serving are capped.

``app = AsgiDeadlineMiddleware(app)`` (Starlette, FastAPI, Django's ASGI handler): an HTTP or
WebSocket request carrying ``x-meshspec-timeout-ms`` runs inside ``deadline_scope`` of that many
milliseconds; the context variable follows the request's task, so every call made through a
``Mesh`` while serving it ends by then. No dependency.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from meshspec_runtime.deadline import TIMEOUT_HEADER, deadline_scope, parse_timeout_header

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_HEADER = TIMEOUT_HEADER.encode("latin-1")


class AsgiDeadlineMiddleware:
    """Wraps an ASGI application. ``default_timeout`` (seconds) caps requests that carry no
    header; None leaves them uncapped. Lifespan and other scopes pass through untouched."""

    def __init__(self, app: AsgiApp, *, default_timeout: float | None = None) -> None:
        self.app = app
        self.default_timeout = default_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        raw = next((value for name, value in scope.get("headers", ()) if name == _HEADER), None)
        timeout = parse_timeout_header(raw)
        with deadline_scope(timeout if timeout is not None else self.default_timeout):
            await self.app(scope, receive, send)
