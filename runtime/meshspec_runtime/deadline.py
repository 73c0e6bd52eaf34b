"""Deadline propagation: a request being served caps every call made while serving it.

The deadline is a ``time.monotonic()`` instant held in a context variable, so it follows the
request through threads' own contexts and asyncio tasks. Server middleware (WSGI, ASGI, a gRPC
server interceptor) sets it from what the caller sent; the drivers read it when a call starts
and end the call by then (``UpstreamPolicies.start``); client integrations send each attempt's
timeout onwards: ``grpc-timeout`` for gRPC (grpc does it from the call's ``timeout``), the
:data:`TIMEOUT_HEADER` for HTTP.

The header carries milliseconds left, rounded down, as a decimal integer: a relative time, so
the two hosts' clocks need not agree (gRPC's ``grpc-timeout`` and Envoy's
``x-envoy-expected-rq-timeout-ms`` do the same). Time spent on the wire is not subtracted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final

TIMEOUT_HEADER: Final = "x-meshspec-timeout-ms"
"""The HTTP request header that carries the caller's remaining time, in milliseconds."""

MAX_TIMEOUT_MS: Final = 10**10
"""A header value above this (about 115 days) is ignored as nonsense, as is one that is not a
plain decimal integer."""

_DEADLINE: ContextVar[float | None] = ContextVar("meshspec_deadline", default=None)

read_deadline: Final = _DEADLINE.get
""":func:`current_deadline` without a Python frame, for the drivers' hot path."""


def current_deadline() -> float | None:
    """The ``time.monotonic()`` instant by which the request being served must be answered;
    None outside a request that carried one."""
    return _DEADLINE.get()


def time_left(now: float | None = None) -> float | None:
    """Seconds left until :func:`current_deadline` (negative once it passed); None without."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return None
    return deadline - (time.monotonic() if now is None else now)


@contextmanager
def deadline_scope(timeout: float | None) -> Iterator[None]:
    """Within the block, calls end at most ``timeout`` seconds from now (or at the deadline
    already in force, when that is sooner). ``None`` changes nothing."""
    if timeout is None:
        yield
        return
    deadline = time.monotonic() + timeout
    outer = _DEADLINE.get()
    token = _DEADLINE.set(deadline if outer is None or deadline < outer else outer)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def parse_timeout_header(value: str | bytes | None) -> float | None:
    """Seconds from a :data:`TIMEOUT_HEADER` value; None when absent or malformed (a caller's
    bad header must not fail the request, only lose the cap)."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 11:
        return None
    milliseconds = int(text)
    return milliseconds / 1000.0 if milliseconds <= MAX_TIMEOUT_MS else None


def format_timeout_header(seconds: float) -> str:
    """The :data:`TIMEOUT_HEADER` value for ``seconds`` left (rounded down, never negative)."""
    return str(max(0, int(seconds * 1000.0)))
