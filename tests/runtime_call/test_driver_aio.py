"""The asyncio driver: real sockets, per-attempt timeouts, real task cancellation."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.drivers import CallFailed, call_async
from meshspec_runtime.policy.breaker import BreakerState
from meshspec_runtime.policy.call import FailReason
from meshspec_runtime.policy.config import (
    BackoffConfig,
    CircuitBreakerConfig,
    LoadBalancerConfig,
    RetryConfig,
    Strategy,
    UpstreamPolicy,
)
from meshspec_runtime.policy.upstream import UpstreamPolicies
from runtime_call_kit import endpoints
from support import free_port

FAST = BackoffConfig(base=0.001, max=0.005)
RR = LoadBalancerConfig(strategy=Strategy.ROUND_ROBIN)


def local(endpoint_id: str, port: int) -> Endpoint:
    return Endpoint(id=endpoint_id, address="127.0.0.1", port=port)


async def ping(ep: Endpoint, timeout: float) -> bytes:
    reader, writer = await asyncio.open_connection(ep.address, ep.port)
    try:
        return await reader.read(4)
    finally:
        writer.close()
        await writer.wait_closed()


async def pong(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"pong")
    await writer.drain()
    writer.close()


def test_a_refused_connection_is_retried_on_the_live_endpoint() -> None:
    async def scenario() -> list[bytes]:
        server = await asyncio.start_server(pong, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        up = UpstreamPolicies(
            UpstreamPolicy(retry=RetryConfig(attempts=2, backoff=FAST), load_balancer=RR),
            [local("dead", free_port()), local("live", port)],
            rng=random.Random(3),
        )
        async with server:
            return await asyncio.gather(*(call_async(up, ping) for _ in range(10)))

    assert asyncio.run(scenario()) == [b"pong"] * 10


def test_a_slow_attempt_is_cut_by_its_timeout_and_retried() -> None:
    async def slow_then_fast(ep: Endpoint, timeout: float) -> str:
        if ep.id == "ep-0":
            await asyncio.sleep(30)
        return ep.id

    up = UpstreamPolicies(
        UpstreamPolicy(
            timeout=5.0,
            retry=RetryConfig(attempts=2, per_try_timeout=0.1, backoff=FAST),
            load_balancer=RR,
        ),
        endpoints(2),
        rng=random.Random(0),
    )
    started = time.monotonic()
    results = [asyncio.run(call_async(up, slow_then_fast)) for _ in range(4)]
    assert results == ["ep-1"] * 4
    assert time.monotonic() - started < 3.0  # two of them waited 0.1s, not 30s


def test_cancelling_the_task_releases_permit_probe_slot_and_active_count() -> None:
    breaker = CircuitBreakerConfig(
        mode="consecutive", consecutive_failures=1, open_for=0.05, half_open_calls=1
    )
    up = UpstreamPolicies(
        UpstreamPolicy(circuit_breaker=breaker, concurrency_limit=1, retry=RetryConfig(attempts=1)),
        endpoints(2),
        rng=random.Random(0),
    )
    assert up.breaker is not None and up.bulkhead is not None

    async def refused(ep: Endpoint, timeout: float) -> None:
        raise ConnectionRefusedError

    async def hang(ep: Endpoint, timeout: float) -> None:
        entered.set()
        await asyncio.Event().wait()

    async def scenario() -> None:
        with pytest.raises(CallFailed):
            await call_async(up, refused)  # trips the breaker
        await asyncio.sleep(0.1)
        assert up.breaker is not None and up.breaker.state(time.monotonic()) is (
            BreakerState.HALF_OPEN
        )
        probe = asyncio.create_task(call_async(up, hang))
        await entered.wait()
        assert up.bulkhead is not None and up.bulkhead.in_use == 1
        assert sum(h.active for h in up.balancer.hosts) == 1
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        assert up.bulkhead.in_use == 0
        assert sum(h.active for h in up.balancer.hosts) == 0
        # the single probe slot is free again: the next call is admitted and closes the breaker
        assert await call_async(up, lambda ep, timeout: asyncio.sleep(0, "ok")) == "ok"
        assert up.breaker.state(time.monotonic()) is BreakerState.CLOSED

    entered = asyncio.Event()
    asyncio.run(scenario())


def test_errors_become_call_failed_with_their_cause() -> None:
    up = UpstreamPolicies(UpstreamPolicy(), endpoints(1), rng=random.Random(0))

    async def broken(ep: Endpoint, timeout: float) -> None:
        raise ValueError("bad payload")

    with pytest.raises(CallFailed) as info:
        asyncio.run(call_async(up, broken))
    assert info.value.reason is FailReason.NOT_RETRYABLE
    assert isinstance(info.value.__cause__, ValueError)


def test_waits_use_the_injected_sleep() -> None:
    up = UpstreamPolicies(
        UpstreamPolicy(retry=RetryConfig(attempts=3, backoff=BackoffConfig(jitter="none"))),
        endpoints(3),
        rng=random.Random(0),
    )
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    async def flaky(ep: Endpoint, timeout: float) -> str:
        if len(slept) < 2:
            raise TimeoutError
        return "ok"

    assert asyncio.run(call_async(up, flaky, sleep=sleep)) == "ok"
    assert slept == [0.025, 0.05]
