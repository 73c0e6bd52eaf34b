"""OpenTelemetry spans: one per logical call, one CLIENT span per attempt under it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from mesh_kit import compile_mesh
from meshspec_runtime import CallFailed, Mesh
from meshspec_runtime.bundle import Endpoint
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

POLICY = {
    "timeout": "2s",
    "retry": {"attempts": 2, "backoff": {"base": "1ms", "max": "1ms"}, "on": ["5xx"]},
    "load_balancer": {"strategy": "round_robin"},
}


class Answer:
    def __init__(self, status: int) -> None:
        self.status_code = status


@pytest.fixture
def traced(tmp_path: Path) -> tuple[Mesh, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    bundle = compile_mesh(tmp_path, {"payments": [9001, 9002]}, policy=POLICY)
    return Mesh.open(bundle, service="checkout", tracer_provider=provider), exporter


def test_a_retried_call_has_a_span_per_attempt_under_the_calls(
    traced: tuple[Mesh, InMemorySpanExporter],
) -> None:
    mesh, exporter = traced
    statuses = iter([503, 200])
    carried: list[dict[str, str]] = []

    def attempt(endpoint: Endpoint, timeout: float) -> Answer:
        headers: dict[str, str] = {}
        propagate.inject(headers)  # what a client integration sends
        carried.append(headers)
        return Answer(next(statuses))

    mesh.upstream("payments").call(attempt)
    spans = exporter.get_finished_spans()
    call = next(s for s in spans if s.kind is trace.SpanKind.INTERNAL)
    attempts = [s for s in spans if s.kind is trace.SpanKind.CLIENT]
    assert len(spans) == 3 and len(attempts) == 2
    assert all(s.parent is not None and s.parent.span_id == call.context.span_id for s in attempts)
    first, second = attempts
    assert first.attributes is not None and second.attributes is not None
    assert first.attributes["http.response.status_code"] == 503
    assert first.status.status_code is trace.StatusCode.ERROR
    assert "http.request.resend_count" not in first.attributes
    assert second.attributes["http.request.resend_count"] == 1
    assert second.attributes["server.address"] == "127.0.0.1"
    assert {first.attributes["server.port"], second.attributes["server.port"]} == {9001, 9002}
    # each attempt's request carries the attempt's own span as the parent
    for span, headers in zip(attempts, carried, strict=True):
        assert f"{span.context.span_id:016x}" in headers["traceparent"]


def test_a_failed_call_says_why_on_its_span(traced: tuple[Mesh, InMemorySpanExporter]) -> None:
    mesh, exporter = traced
    with pytest.raises(CallFailed):
        mesh.upstream("payments").call(lambda endpoint, timeout: Answer(503))
    call = next(s for s in exporter.get_finished_spans() if s.kind is trace.SpanKind.INTERNAL)
    assert call.status.status_code is trace.StatusCode.ERROR
    event = next(e for e in call.events if e.name == "meshspec.call_failed")
    assert event.attributes is not None
    assert event.attributes["meshspec.reason"] == "attempts_exhausted"


def test_asyncio_calls_are_traced_too(traced: tuple[Mesh, InMemorySpanExporter]) -> None:
    mesh, exporter = traced

    async def attempt(endpoint: Endpoint, timeout: float) -> Answer:
        return Answer(200)

    asyncio.run(mesh.upstream("payments").call_async(attempt))
    kinds = sorted(s.kind.name for s in exporter.get_finished_spans())
    assert kinds == ["CLIENT", "INTERNAL"]
