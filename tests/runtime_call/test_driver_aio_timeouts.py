"""The asyncio driver's per-try timeouts (one heap of deadlines per loop, ``attempt_timer``):
a timeout is told apart from an outside cancellation even when both arrive in the same loop
turn, the task is left with no cancellation pending, and the heap does not grow."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.drivers import CallFailed, call_async
from meshspec_runtime.drivers.attempt_timer import timer_for
from meshspec_runtime.policy.call import FailReason
from meshspec_runtime.policy.config import (
    BackoffConfig,
    RetryConfig,
    UpstreamPolicy,
)
from meshspec_runtime.policy.upstream import UpstreamPolicies
from runtime_call_kit import endpoints

FAST = BackoffConfig(base=0.001, max=0.002)


def policies(per_try: float, attempts: int = 1, limit: int | None = 1) -> UpstreamPolicies:
    return UpstreamPolicies(
        UpstreamPolicy(
            timeout=5.0,
            retry=RetryConfig(attempts=attempts, per_try_timeout=per_try, backoff=FAST),
            concurrency_limit=limit,
        ),
        endpoints(2),
        rng=random.Random(0),
    )


def released(up: UpstreamPolicies) -> bool:
    assert up.bulkhead is not None
    return up.bulkhead.in_use == 0 and all(h.active == 0 for h in up.balancer.hosts)


def test_every_attempt_overrunning_fails_the_call_with_a_timeout_and_no_cancel_pending() -> None:
    up = policies(per_try=0.02, attempts=2)

    async def hang(ep: Endpoint, timeout: float) -> None:
        await asyncio.sleep(30)

    async def scenario() -> int:
        with pytest.raises(CallFailed) as info:
            await call_async(up, hang)
        assert info.value.reason is FailReason.ATTEMPTS_EXHAUSTED
        assert isinstance(info.value.__cause__, TimeoutError)
        assert info.value.last is not None and info.value.last.kind == "timeout"
        await asyncio.sleep(0)  # a cancellation left pending would surface here
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()

    started = time.monotonic()
    assert asyncio.run(scenario()) == 0
    assert time.monotonic() - started < 2.0
    assert released(up)


@pytest.mark.parametrize("outside_first", [True, False])
def test_an_outside_cancellation_in_the_same_loop_turn_as_the_timeout_wins(
    outside_first: bool,
) -> None:
    """The loop is blocked past both the attempt's deadline and the outside cancellation's
    time, so both callbacks run before the task resumes, in either order."""
    up = policies(per_try=0.05)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()

        async def blocking(ep: Endpoint, timeout: float) -> None:
            # the outside cancellation falls due before (0 s) or after (0.1 s) the attempt's
            # deadline (0.05 s); blocking the loop makes both due in the same loop turn
            loop.call_at(loop.time() + (0.0 if outside_first else 0.1), call.cancel)
            time.sleep(0.15)
            await asyncio.sleep(30)

        call = asyncio.create_task(call_async(up, blocking))
        with pytest.raises(asyncio.CancelledError):
            await call
        assert call.cancelled()

    asyncio.run(scenario())
    assert released(up)


def test_an_attempt_that_swallows_the_timeout_keeps_its_answer_and_no_cancel_pending() -> None:
    up = policies(per_try=0.02)

    async def stubborn(ep: Endpoint, timeout: float) -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            return "late"
        return "never"

    async def scenario() -> tuple[str, int]:
        answer = await call_async(up, stubborn)
        task = asyncio.current_task()
        assert task is not None
        await asyncio.sleep(0.01)
        return answer, task.cancelling()

    assert asyncio.run(scenario()) == ("late", 0)
    assert released(up)


def test_the_deadline_heap_is_empty_after_sequential_and_concurrent_calls() -> None:
    up = policies(per_try=0.5, attempts=1, limit=None)

    async def varied(ep: Endpoint, timeout: float) -> int:
        delay = random.random() * 0.01
        if delay > 0.005:
            await asyncio.sleep(delay)
        return 1

    async def scenario() -> list[int]:
        timer = timer_for(asyncio.get_running_loop())
        sizes = []
        for _ in range(200):
            await call_async(up, varied)
            sizes.append(len(timer))
        await asyncio.gather(*(call_async(up, varied) for _ in range(300)))
        sizes.append(len(timer))
        return sizes

    assert set(asyncio.run(scenario())) == {0}


def test_timeouts_of_concurrent_attempts_fire_in_deadline_order() -> None:
    ended: list[float] = []

    async def one(timeout: float) -> None:
        up = UpstreamPolicies(
            UpstreamPolicy(timeout=timeout, retry=RetryConfig(attempts=1)),
            endpoints(1),
            rng=random.Random(0),
        )

        async def hang(ep: Endpoint, attempt_timeout: float) -> None:
            try:
                await asyncio.sleep(30)
            finally:
                ended.append(attempt_timeout)

        with pytest.raises(CallFailed) as info:
            await call_async(up, hang)
        assert isinstance(info.value.__cause__, TimeoutError)

    async def scenario() -> None:
        await asyncio.gather(one(0.09), one(0.03), one(0.06))

    started = time.monotonic()
    asyncio.run(scenario())
    assert ended == pytest.approx([0.03, 0.06, 0.09], abs=0.005)
    assert time.monotonic() - started < 1.0
