"""The sync and asyncio drivers of a hedged edge, with real threads, tasks and clocks: a slow
first attempt is hedged, the hedge's answer is returned, the loser is discarded (sync) or
cancelled (asyncio), and nothing stays held."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.drivers.aio import call_async
from meshspec_runtime.drivers.classify import CallFailed
from meshspec_runtime.drivers.sync import call_sync
from meshspec_runtime.policy.call import FailReason
from meshspec_runtime.policy.config import (
    HedgeConfig,
    LoadBalancerConfig,
    RetryConfig,
    Strategy,
    UpstreamPolicy,
)
from meshspec_runtime.policy.upstream import UpstreamPolicies
from runtime_call_kit import upstream

SLOW = 1.0
POLICY = UpstreamPolicy(
    timeout=3.0,
    retry=RetryConfig(attempts=1),
    load_balancer=LoadBalancerConfig(strategy=Strategy.ROUND_ROBIN),
    hedge=HedgeConfig(delay=0.05, max_attempts=2),
)


class Reply:
    def __init__(self, endpoint: Endpoint, status_code: int = 200) -> None:
        self.endpoint = endpoint
        self.status_code = status_code


def active(up: UpstreamPolicies) -> int:
    return sum(len(h.inflight) for h in up.balancer.hosts)


def test_sync_the_hedge_answers_first_and_the_loser_is_discarded() -> None:
    up = upstream(POLICY)
    seen: list[Endpoint] = []
    discarded: list[Reply] = []
    loser_done = threading.Event()

    def attempt(endpoint: Endpoint, timeout: float) -> Reply:
        seen.append(endpoint)
        time.sleep(SLOW if len(seen) == 1 else 0.01)
        return Reply(endpoint)

    def discard(reply: Reply) -> None:
        discarded.append(reply)
        loser_done.set()

    began = time.monotonic()
    reply = call_sync(up, attempt, discard=discard)
    took = time.monotonic() - began
    assert len(seen) == 2 and seen[0] != seen[1]
    assert reply.endpoint == seen[1]
    assert took < SLOW / 2
    assert active(up) == 0  # the loser's count was released when the call ended
    assert loser_done.wait(5 * SLOW)
    assert [r.endpoint for r in discarded] == [seen[0]]


def test_sync_a_non_fatal_answer_of_every_attempt_fails_the_call() -> None:
    up = upstream(POLICY)

    def attempt(endpoint: Endpoint, timeout: float) -> Reply:
        return Reply(endpoint, 503)

    with pytest.raises(CallFailed) as failed:
        call_sync(up, attempt)
    assert failed.value.reason is FailReason.ATTEMPTS_EXHAUSTED
    assert isinstance(failed.value.result, Reply) and failed.value.result.status_code == 503


def test_sync_an_exception_of_an_attempt_is_its_outcome() -> None:
    up = upstream(POLICY)
    calls: list[int] = []

    def attempt(endpoint: Endpoint, timeout: float) -> Reply:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionRefusedError("refused")
        return Reply(endpoint)

    assert call_sync(up, attempt).status_code == 200
    assert len(calls) == 2  # connect-failure is non-fatal: the hedge went at once


def test_async_the_hedge_answers_first_and_the_loser_is_cancelled() -> None:
    up = upstream(POLICY)
    seen: list[Endpoint] = []
    cancelled: list[Endpoint] = []

    async def attempt(endpoint: Endpoint, timeout: float) -> Reply:
        seen.append(endpoint)
        try:
            await asyncio.sleep(SLOW if len(seen) == 1 else 0.01)
        except asyncio.CancelledError:
            cancelled.append(endpoint)
            raise
        return Reply(endpoint)

    async def main() -> tuple[Reply, float]:
        began = time.monotonic()
        reply = await call_async(up, attempt)
        took = time.monotonic() - began
        await asyncio.sleep(0)  # let the loser's cancellation run
        return reply, took

    reply, took = asyncio.run(main())
    assert len(seen) == 2 and seen[0] != seen[1] and reply.endpoint == seen[1]
    assert took < SLOW / 2
    assert cancelled == [seen[0]]
    assert active(up) == 0


def test_async_an_attempt_over_its_timeout_is_a_timeout_and_hedged() -> None:
    policy = POLICY.model_copy(
        update={"retry": RetryConfig(attempts=1, per_try_timeout=0.1), "timeout": 1.0}
    )
    up = upstream(policy)
    seen: list[Endpoint] = []

    async def attempt(endpoint: Endpoint, timeout: float) -> Reply:
        seen.append(endpoint)
        await asyncio.sleep(10.0)
        return Reply(endpoint)

    async def main() -> None:
        await call_async(up, attempt)

    with pytest.raises(CallFailed) as failed:
        asyncio.run(main())
    assert failed.value.reason is FailReason.ATTEMPTS_EXHAUSTED
    assert failed.value.last is not None and failed.value.last.kind.value == "timeout"
    assert len(seen) == 2 and active(up) == 0


def test_async_an_outside_cancellation_cancels_every_attempt_and_releases_the_call() -> None:
    up = upstream(POLICY)
    cancelled: list[Endpoint] = []

    async def attempt(endpoint: Endpoint, timeout: float) -> Reply:
        try:
            await asyncio.sleep(SLOW)
        except asyncio.CancelledError:
            cancelled.append(endpoint)
            raise
        return Reply(endpoint)

    async def main() -> None:
        task = asyncio.ensure_future(call_async(up, attempt))
        await asyncio.sleep(0.1)  # both attempts in flight
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)

    asyncio.run(main())
    assert len(cancelled) == 2
    assert active(up) == 0
