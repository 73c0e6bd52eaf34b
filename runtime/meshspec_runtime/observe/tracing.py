"""OpenTelemetry spans for calls through a ``Mesh`` (extra ``meshspec-runtime[otel]``).

``Mesh.open(..., tracer_provider=provider)``: every logical call is an INTERNAL span named
after the upstream, and every attempt a CLIENT span under it, current while the attempt runs,
so a client integration injects *its* context into the request (``traceparent``), and the
server's span is the attempt's child. Attributes follow OpenTelemetry's semantic conventions:
``server.address``/``server.port`` of the endpoint picked, ``http.request.resend_count`` on
every retry or hedge (the attempt's number minus one; a hedged call's attempts, which run at
once, are numbered by the driver as the call machine started them), ``http.response.status_code`` or
``rpc.grpc.status_code`` when the upstream answered, ``error.type`` when the attempt failed.
A call the policies end without an answer gets a ``meshspec.call_failed`` event on its span,
with the reason (``breaker_open``, ``budget_exhausted``, ``throttled``, ``attempts_exhausted``
...), and an error status.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final, TypeVar

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from meshspec_runtime.drivers.attempt_number import ATTEMPT_NUMBER
from meshspec_runtime.drivers.classify import CallFailed
from meshspec_runtime.errors import status_of

if TYPE_CHECKING:
    from meshspec_runtime.bundle import Endpoint
    from meshspec_runtime.mesh import MeshUpstream

T = TypeVar("T")

INSTRUMENTATION: Final = "meshspec_runtime"


class CallSpans:
    """The spans of one logical call: :meth:`attempts` wraps the attempt function."""

    __slots__ = ("_handle", "_number", "_span", "_tracer")

    def __init__(self, tracer: trace.Tracer, handle: MeshUpstream, span: trace.Span) -> None:
        self._tracer = tracer
        self._handle = handle
        self._span = span
        self._number = 0

    def attempts(self, fn: Callable[[Endpoint, float], T]) -> Callable[[Endpoint, float], T]:
        def traced(endpoint: Endpoint, timeout: float) -> T:
            with self._attempt(endpoint, timeout) as span:
                result = fn(endpoint, timeout)
                _answered(span, result)
                return result

        return traced

    def async_attempts(
        self, afn: Callable[[Endpoint, float], Awaitable[T]]
    ) -> Callable[[Endpoint, float], Awaitable[T]]:
        async def traced(endpoint: Endpoint, timeout: float) -> T:
            with self._attempt(endpoint, timeout) as span:
                result = await afn(endpoint, timeout)
                _answered(span, result)
                return result

        return traced

    @contextmanager
    def _attempt(self, endpoint: Endpoint, timeout: float) -> Iterator[trace.Span]:
        number = ATTEMPT_NUMBER.get()
        if number is None:  # a plain call: its attempts run one after the other
            number = self._number = self._number + 1
        attributes: dict[str, str | int | float] = {
            "server.address": endpoint.address,
            "server.port": endpoint.port,
            "meshspec.upstream": self._handle.name,
            "meshspec.endpoint": endpoint.id,
            "meshspec.attempt.timeout": timeout,
        }
        if number > 1:
            attributes["http.request.resend_count"] = number - 1
        with self._tracer.start_as_current_span(
            self._handle.name, kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            yield span


def _answered(span: trace.Span, result: object) -> None:
    status = status_of(result)
    if status is not None:
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
            span.set_attribute("error.type", str(status))


class Tracing:
    """What ``Mesh`` holds when tracing is on."""

    def __init__(self, provider: trace.TracerProvider) -> None:
        self._tracer = provider.get_tracer(INSTRUMENTATION)

    @contextmanager
    def call(self, handle: MeshUpstream) -> Iterator[CallSpans]:
        """The span of one logical call to ``handle``'s upstream, current within the block."""
        attributes = {"meshspec.caller": handle.caller, "meshspec.upstream": handle.name}
        with self._tracer.start_as_current_span(
            handle.name, kind=SpanKind.INTERNAL, attributes=attributes
        ) as span:
            try:
                yield CallSpans(self._tracer, handle, span)
            except CallFailed as failed:
                span.add_event("meshspec.call_failed", {"meshspec.reason": failed.reason.value})
                span.set_attribute("error.type", failed.reason.value)
                span.set_status(Status(StatusCode.ERROR, str(failed)))
                raise
