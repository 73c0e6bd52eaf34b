"""Hedged gRPC calls through ``mesh.grpc_channel`` and ``mesh.grpc_aio_channel`` against real
loopback grpc servers: one instance answers slowly, the other at once. Unary calls are hedged
(every call is answered by the fast one soon after the hedge delay, though half of them begin
slow); streams are one attempt and are not (a stream cannot be raced: its messages are
consumed as they come)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from grpc_servers import hang, ok, serving, slow
from hedging_kit import CALLS, FAST_ENOUGH, POLICY, SLOW
from mesh_kit import compile_mesh
from meshspec_runtime import Mesh
from prometheus_client import CollectorRegistry

METHOD = "/shop.Payments/Charge"
EDGE = {"caller": "checkout", "upstream": "payments"}


def open_mesh(tmp_path: Path, ports: list[int], registry: CollectorRegistry) -> Mesh:
    bundle = compile_mesh(tmp_path, {"payments": ports}, policy=POLICY, protocol="grpc")
    return Mesh.open(bundle, service="checkout", metrics=registry)


def hedges(registry: CollectorRegistry, event: str) -> float | None:
    return registry.get_sample_value("meshspec_upstream_hedges_total", {**EDGE, "event": event})


def test_sync_unary_calls_are_answered_by_the_hedge(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    with (
        serving(slow(SLOW), ok()) as (late, fast),
        open_mesh(tmp_path, [late.port, fast.port], registry) as mesh,
    ):
        charge: Any = mesh.grpc_channel("payments").unary_unary(METHOD)
        durations, answers = [], []
        for number in range(CALLS):
            began = time.monotonic()
            answers.append(charge(b"order-%d" % number))
            durations.append(time.monotonic() - began)
        started = hedges(registry, "started")
        won = hedges(registry, "won")
    assert answers == [b"%d:order-%d" % (fast.port, number) for number in range(CALLS)]
    assert max(durations) < FAST_ENOUGH
    assert len(fast.requests) == CALLS  # every call was answered there (hedge or first try)
    assert late.requests  # round robin sent first tries to the slow one too
    assert started == won == len(late.requests)  # each of those was hedged, and the hedge won


def test_aio_unary_calls_are_answered_by_the_hedge(tmp_path: Path) -> None:
    registry = CollectorRegistry()

    async def calls(mesh: Mesh) -> tuple[list[bytes], list[float], list[float | None]]:
        charge: Any = mesh.grpc_aio_channel("payments").unary_unary(METHOD)
        durations, answers = [], []
        for number in range(CALLS):
            began = time.monotonic()
            answers.append(await charge(b"order-%d" % number))
            durations.append(time.monotonic() - began)
        counted = [hedges(registry, "started"), hedges(registry, "won")]
        await mesh.aclose()
        return answers, durations, counted

    with serving(slow(SLOW), ok()) as (late, fast):
        answers, durations, counted = asyncio.run(
            calls(open_mesh(tmp_path, [late.port, fast.port], registry))
        )
    assert answers == [b"%d:order-%d" % (fast.port, number) for number in range(CALLS)]
    assert max(durations) < FAST_ENOUGH
    assert late.requests and len(fast.requests) == CALLS
    assert counted == [len(late.requests)] * 2  # each call begun slow was hedged, and it won


def test_sync_losers_are_cancelled_at_once_not_at_their_timeout(tmp_path: Path) -> None:
    """The hung instance's calls end when the hedge wins (grpc cancels the RPC: the server's
    context goes inactive), not at the 2.5 s per-try timeout."""
    registry = CollectorRegistry()
    with (
        serving(hang(), ok()) as (hung, fast),
        open_mesh(tmp_path, [hung.port, fast.port], registry) as mesh,
    ):
        charge: Any = mesh.grpc_channel("payments").unary_unary(METHOD)
        answers = [charge(b"order-%d" % number) for number in range(CALLS)]
        deadline = time.monotonic() + 2
        while len(hung.gave_up_after) < len(hung.requests) and time.monotonic() < deadline:
            time.sleep(0.01)  # the hung handler notices the cancellation within 5 ms
        cancelled = hedges(registry, "cancelled")
    assert answers == [b"%d:order-%d" % (fast.port, number) for number in range(CALLS)]
    assert hung.requests and cancelled == len(hung.requests)
    assert len(hung.gave_up_after) == len(hung.requests)
    assert max(hung.gave_up_after) < FAST_ENOUGH


def test_aio_losers_are_cancelled_at_once(tmp_path: Path) -> None:
    registry = CollectorRegistry()

    async def calls(mesh: Mesh) -> tuple[list[bytes], float | None]:
        charge = mesh.grpc_aio_channel("payments").unary_unary(METHOD)
        answers = [await charge(b"order-%d" % number) for number in range(CALLS)]
        cancelled = hedges(registry, "cancelled")
        await mesh.aclose()
        return answers, cancelled

    with serving(hang(), ok()) as (hung, fast):
        answers, cancelled = asyncio.run(
            calls(open_mesh(tmp_path, [hung.port, fast.port], registry))
        )
        deadline = time.monotonic() + 2
        while len(hung.gave_up_after) < len(hung.requests) and time.monotonic() < deadline:
            time.sleep(0.01)
    assert answers == [b"%d:order-%d" % (fast.port, number) for number in range(CALLS)]
    assert hung.requests and cancelled == len(hung.requests)
    assert len(hung.gave_up_after) == len(hung.requests)
    assert max(hung.gave_up_after) < FAST_ENOUGH


def test_a_sync_stream_is_not_hedged(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    with (
        serving(slow(SLOW), ok()) as (late, fast),
        open_mesh(tmp_path, [late.port, fast.port], registry) as mesh,
    ):
        stream: Any = mesh.grpc_channel("payments").unary_stream("/shop.Payments/Stream")
        began = time.monotonic()
        first = list(stream(b"a"))  # round robin: the first call goes to one instance
        second = list(stream(b"b"))  # and the second to the other
        took = time.monotonic() - began
        started = hedges(registry, "started")
    assert len(first) == len(second) == 3
    ports = {int(messages[0].split(b":")[0]) for messages in (first, second)}
    assert ports == {late.port, fast.port}  # each stream went to one instance only
    assert took >= SLOW  # the slow instance's stream was waited for, not raced
    assert len(late.requests) == len(fast.requests) == 1
    assert started == 0
