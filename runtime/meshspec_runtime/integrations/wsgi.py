"""WSGI middleware that reads the caller's deadline, so calls made while serving are capped.

``app = DeadlineMiddleware(app)``: a request carrying ``x-meshspec-timeout-ms`` (what the
meshspec client integrations send with every attempt) runs inside ``deadline_scope`` of that
many milliseconds, and every call the application makes through a ``Mesh`` while handling it
ends by then. No dependency: any WSGI server and framework (Flask, Django) takes it.

The scope covers the application call; a response body produced lazily, by a generator the
server iterates after the application returned, runs without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from meshspec_runtime.deadline import TIMEOUT_HEADER, deadline_scope, parse_timeout_header

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

ENVIRON_KEY = "HTTP_" + TIMEOUT_HEADER.upper().replace("-", "_")


class DeadlineMiddleware:
    """Wraps a WSGI application. ``default_timeout`` (seconds) caps requests that carry no
    header; None leaves them uncapped."""

    def __init__(self, app: WsgiApp, *, default_timeout: float | None = None) -> None:
        self.app = app
        self.default_timeout = default_timeout

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        timeout = parse_timeout_header(environ.get(ENVIRON_KEY))
        with deadline_scope(timeout if timeout is not None else self.default_timeout):
            return self.app(environ, start_response)
