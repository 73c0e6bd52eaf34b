"""Tracing of hedged calls through the httpx clients against real loopback servers: every
attempt's CLIENT span is a child of its call's INTERNAL span, and carries the attempt's own
number (``http.request.resend_count``) even when the attempts run at once in worker threads.

With ``hedge.delay`` 1 ms and instances that answer after 50 ms, the five attempts of a
call start within a few milliseconds of each other, each on the next of five instances in
round-robin order, so attempt N of a call is on the instance N - 1 places after
its first attempt's: a span numbered by whichever thread got there first would break that.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from http_servers import Behaviour, serving
from mesh_kit import compile_mesh
from meshspec_runtime import Mesh
from meshspec_runtime.drivers import hedge_sync
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

INSTANCES = 5
SLOW = 0.05
SLOW_INSTANCES: list[Behaviour] = ["slow"] * INSTANCES
CALLS = 20
POLICY: dict[str, Any] = {
    "timeout": "3s",
    "retry": {"attempts": 1, "per_try_timeout": "2s"},
    "load_balancer": {"strategy": "round_robin"},
    "hedge": {"delay": "1ms", "max_attempts": INSTANCES},
}


def traced_mesh(tmp_path: Path, ports: list[int]) -> tuple[Mesh, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    bundle = compile_mesh(tmp_path, {"payments": ports}, policy=POLICY)
    return Mesh.open(bundle, service="checkout", tracer_provider=provider), exporter


def sync_calls(mesh: Mesh) -> None:
    with mesh.httpx_client("payments") as client:
        for _ in range(CALLS):
            assert client.get("/").text == "ok"


def async_calls(mesh: Mesh) -> None:
    async def calls() -> None:
        async with mesh.async_httpx_client("payments") as client:
            for _ in range(CALLS):
                assert (await client.get("/")).text == "ok"

    asyncio.run(calls())


def all_spans(exporter: InMemorySpanExporter, count: int) -> Sequence[ReadableSpan]:
    """The finished spans once there are ``count`` (a losing thread ends its span late)."""
    deadline = time.monotonic() + 5
    while len(exporter.get_finished_spans()) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return exporter.get_finished_spans()


@pytest.fixture
def frequent_switches() -> Iterator[None]:
    """Threads switch every microsecond (5 ms by default): attempts in worker threads then
    interleave at any bytecode, as they may on a busy host."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


@pytest.mark.usefixtures("frequent_switches")
@pytest.mark.parametrize("calls", [sync_calls, async_calls])
def test_each_attempt_span_is_its_calls_child_with_its_own_number(
    tmp_path: Path, calls: Any
) -> None:
    with serving(*SLOW_INSTANCES, delay=SLOW) as servers:
        mesh, exporter = traced_mesh(tmp_path, [server.port for server in servers])
        rotation = [endpoint.port for endpoint in mesh.upstream("payments").endpoints]
        with mesh:
            calls(mesh)
            spans = all_spans(exporter, CALLS * (1 + INSTANCES))
    check_spans(spans, rotation)


class LateFirstPool(ThreadPoolExecutor):
    """A hedge pool whose workers start each call's attempts in the reverse order: attempt N
    of ``INSTANCES`` waits (``INSTANCES`` - N) x 20 ms before it runs."""

    def __init__(self) -> None:
        super().__init__(INSTANCES * 2)
        self._submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        held = (INSTANCES - 1 - self._submitted % INSTANCES) * 0.02
        self._submitted += 1

        def later() -> Any:
            time.sleep(held)
            return fn(*args, **kwargs)

        return super().submit(later)


def test_sync_attempts_are_numbered_as_the_call_started_them_not_as_threads_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = LateFirstPool()
    monkeypatch.setattr(hedge_sync, "_pool", pool)
    with serving(*SLOW_INSTANCES, delay=SLOW) as servers:
        mesh, exporter = traced_mesh(tmp_path, [server.port for server in servers])
        rotation = [endpoint.port for endpoint in mesh.upstream("payments").endpoints]
        with mesh:
            sync_calls(mesh)
            spans = all_spans(exporter, CALLS * (1 + INSTANCES))
    pool.shutdown()
    check_spans(spans, rotation)


def check_spans(spans: Sequence[ReadableSpan], rotation: list[int]) -> None:
    """Every call has ``INSTANCES`` attempt spans as children, numbered 1 to ``INSTANCES`` in
    the order the round robin picked their instances in."""
    call_spans = [s for s in spans if s.kind is trace.SpanKind.INTERNAL]
    attempt_spans = [s for s in spans if s.kind is trace.SpanKind.CLIENT]
    assert len(call_spans) == CALLS
    assert len(attempt_spans) == CALLS * INSTANCES
    for call in call_spans:
        children = [
            s
            for s in attempt_spans
            if s.parent is not None and s.parent.span_id == call.context.span_id
        ]
        assert len(children) == INSTANCES  # all of them: every attempt has a call as parent
        numbered: dict[int, int] = {}  # attempt number -> port
        for span in children:
            assert span.attributes is not None
            number = 1 + int(span.attributes.get("http.request.resend_count", 0))  # type: ignore[arg-type]
            assert number not in numbered, "two attempts of one call with one number"
            numbered[number] = int(span.attributes["server.port"])  # type: ignore[arg-type]
        assert sorted(numbered) == list(range(1, INSTANCES + 1))
        first = rotation.index(numbered[1])
        assert [numbered[n] for n in sorted(numbered)] == [
            rotation[(first + n) % INSTANCES] for n in range(INSTANCES)
        ]
