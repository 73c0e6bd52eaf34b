"""The hedged call machine (policy/hedge.py), driven with a fake clock: hedges after the
delay on another endpoint, the first good answer wins and the others are released and
counted, non-fatal outcomes hedge at once, the budget pays for hedges, retries come last."""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

import pytest
from meshspec_runtime.observe.calls import CallLog
from meshspec_runtime.policy.call import Attempt, Done, Fail, FailReason, Wait
from meshspec_runtime.policy.call_state_error import CallStateError
from meshspec_runtime.policy.config import (
    BackoffConfig,
    HedgeConfig,
    Jitter,
    LoadBalancerConfig,
    RetryBudgetConfig,
    RetryConfig,
    Strategy,
    UpstreamPolicy,
)
from meshspec_runtime.policy.hedge import HedgedCall, HedgeStep, WaitAny
from meshspec_runtime.policy.latency import RecentPercentile
from meshspec_runtime.policy.outcome import Outcome, OutcomeKind
from meshspec_runtime.policy.upstream import UpstreamPolicies
from runtime_call_kit import status, upstream


def answer(latency: float, code: int | None = None) -> Outcome:
    return Outcome(OutcomeKind.ANSWER, latency=latency, status=code)


def policy(
    *,
    delay: float = 0.1,
    max_attempts: int = 2,
    retries: int = 1,
    budget: RetryBudgetConfig | None = None,
    concurrency_limit: int | None = None,
) -> UpstreamPolicy:
    return UpstreamPolicy(
        timeout=5.0,
        retry=RetryConfig(
            attempts=retries,
            on=("5xx", "timeout"),
            backoff=BackoffConfig(base=0.01, max=0.01, jitter=Jitter.NONE),
            budget=budget,
        ),
        load_balancer=LoadBalancerConfig(strategy=Strategy.ROUND_ROBIN),
        hedge=HedgeConfig(delay=delay, max_attempts=max_attempts, non_fatal=("5xx", "timeout")),
        concurrency_limit=concurrency_limit,
    )


def drive(
    call: HedgedCall, outcomes: Sequence[Outcome], start: float = 0.0
) -> tuple[HedgeStep, list[HedgeStep], float]:
    """Run ``call``: attempt n takes ``outcomes[n - 1]``'s latency; WaitAny advances to the
    earliest of its delay and the next attempt to end. Returns the final step, every step and
    the time it ended."""
    now = start
    ending: list[tuple[float, int]] = []
    steps: list[HedgeStep] = []
    while True:
        step = call.next(now)
        steps.append(step)
        if isinstance(step, Attempt):
            latency = min(outcomes[step.number - 1].latency, step.timeout)
            heapq.heappush(ending, (now + latency, step.number))
        elif isinstance(step, WaitAny):
            due, number = ending[0]
            if due <= now + step.delay:
                heapq.heappop(ending)
                now = due
                call.record(now, number, outcomes[number - 1])
            else:
                now += step.delay
        elif isinstance(step, Wait):
            assert not call.in_flight
            now += step.delay
        else:
            assert isinstance(step, Done | Fail)
            return step, steps, now


def attempts(steps: list[HedgeStep]) -> list[Attempt]:
    return [s for s in steps if isinstance(s, Attempt)]


def active(up: UpstreamPolicies) -> int:
    return sum(len(h.inflight) for h in up.balancer.hosts)


def test_a_fast_first_answer_makes_no_hedge() -> None:
    up = upstream(policy())
    call = up.start_hedged(0.0)
    final, steps, ended = drive(call, [answer(0.05)])
    assert final == Done(answer(0.05)) and ended == pytest.approx(0.05)
    assert len(attempts(steps)) == 1
    assert (call.hedges, call.hedges_cancelled, call.hedge_won, call.losers) == (0, 0, False, ())


def test_a_slow_attempt_is_hedged_on_another_endpoint_and_the_hedge_wins() -> None:
    up = upstream(policy(delay=0.1))
    call = up.start_hedged(0.0)
    final, steps, ended = drive(call, [answer(1.0), answer(0.05)])
    assert final == Done(answer(0.05)) and ended == pytest.approx(0.15)
    first, hedge = attempts(steps)
    assert first.endpoint != hedge.endpoint
    assert (call.hedges, call.hedges_cancelled, call.hedge_won, call.losers) == (1, 1, True, (1,))
    assert active(up) == 0  # the loser's active count was released with the call


def test_the_first_attempt_wins_when_it_answers_before_the_hedge() -> None:
    up = upstream(policy(delay=0.1))
    call = up.start_hedged(0.0)
    final, _, ended = drive(call, [answer(0.12), answer(0.5)])
    assert final == Done(answer(0.12)) and ended == pytest.approx(0.12)
    assert (call.hedges, call.hedge_won, call.losers) == (1, False, (2,))


def test_a_non_fatal_outcome_hedges_at_once() -> None:
    up = upstream(policy(delay=1.0))
    call = up.start_hedged(0.0)
    final, steps, ended = drive(call, [status(503, 0.01), answer(0.02)])
    assert final == Done(answer(0.02)) and ended == pytest.approx(0.03)
    assert len(attempts(steps)) == 2 and call.hedges_cancelled == 0 and call.hedge_won


def test_a_fatal_answer_ends_the_call_and_cancels_the_rest() -> None:
    up = upstream(policy(delay=0.1))
    call = up.start_hedged(0.0)
    final, _, _ = drive(call, [answer(0.5), status(404, 0.05)])
    assert final == Done(status(404, 0.05))  # not in non_fatal: the answer stands
    assert call.losers == (1,) and active(up) == 0


def test_hedges_stop_at_max_attempts() -> None:
    up = upstream(policy(delay=0.1, max_attempts=3))
    call = up.start_hedged(0.0)
    final, steps, ended = drive(call, [answer(1.0), answer(1.0), answer(1.0)])
    assert len(attempts(steps)) == 3 and call.hedges == 2
    assert final == Done(answer(1.0)) and ended == pytest.approx(1.0)  # the first, at 1.0
    assert call.losers == (2, 3) and call.hedges_cancelled == 2


def test_the_budget_pays_for_hedges_and_a_refusal_means_no_hedge() -> None:
    bucket = RetryBudgetConfig(kind="bucket", ratio=0.0, cap=1.0, initial=1.0, threshold=0.0)
    up = upstream(policy(delay=0.1, budget=bucket))
    first = up.start_hedged(0.0)
    drive(first, [answer(1.0), answer(0.05)])
    assert first.hedges == 1  # took the bucket's only token
    second = up.start_hedged(2.0)
    final, steps, ended = drive(second, [answer(1.0)], start=2.0)
    assert final == Done(answer(1.0)) and ended == pytest.approx(3.0)
    assert len(attempts(steps)) == 1
    assert (second.hedges, second.hedges_denied) == (0, 1)


def test_retries_come_after_every_hedged_attempt_failed_non_fatally() -> None:
    up = upstream(policy(delay=0.1, max_attempts=2, retries=2))
    call = up.start_hedged(0.0)
    failing = status(503, 0.01)
    final, steps, _ = drive(call, [failing, failing, failing])
    # 2 hedged attempts, then retry.attempts - 1 = 1 retry after its backoff
    assert final == Fail(FailReason.ATTEMPTS_EXHAUSTED, failing)
    assert len(attempts(steps)) == 3 and call.hedges == 1
    waits = [s for s in steps if isinstance(s, Wait)]
    assert waits == [Wait(0.01)]


def test_without_retry_a_non_fatal_failure_of_every_attempt_ends_the_call() -> None:
    up = upstream(policy(delay=0.1, max_attempts=2, retries=1))
    call = up.start_hedged(0.0)
    failing = status(503, 0.01)
    final, steps, _ = drive(call, [failing, failing])
    assert final == Fail(FailReason.ATTEMPTS_EXHAUSTED, failing)
    assert len(attempts(steps)) == 2


def test_cancel_releases_every_attempt_in_flight_and_the_permit() -> None:
    up = upstream(policy(delay=0.1, concurrency_limit=1))
    call = up.start_hedged(0.0)
    assert isinstance(call.next(0.0), Attempt)
    waiting = call.next(0.05)
    assert isinstance(waiting, WaitAny) and waiting.delay == pytest.approx(0.05)
    assert isinstance(call.next(0.1), Attempt)
    assert active(up) == 2
    call.cancel(0.2)
    call.cancel(0.3)  # idempotent
    assert active(up) == 0
    assert up.bulkhead is not None and up.bulkhead.try_acquire()  # the permit is back
    with pytest.raises(CallStateError):
        call.next(0.4)


def test_record_of_an_attempt_not_in_flight_is_a_protocol_error() -> None:
    up = upstream(policy())
    call = up.start_hedged(0.0)
    call.next(0.0)
    with pytest.raises(CallStateError):
        call.record(0.1, 2, answer(0.1))


def test_the_wait_is_unbounded_once_no_hedge_can_start() -> None:
    up = upstream(policy(delay=0.1, max_attempts=2))
    call = up.start_hedged(0.0)
    call.next(0.0)
    call.next(0.1)  # the hedge
    assert call.next(0.2) == WaitAny(math.inf)


def test_the_call_log_counts_hedges_started_won_and_cancelled() -> None:
    up = upstream(policy(delay=0.1))
    log = up.call_log = CallLog(up.failure_on, up.retry_on)
    drive(up.start_hedged(0.0), [answer(1.0), answer(0.05)])  # hedge won, first cancelled
    drive(up.start_hedged(1.0), [answer(0.02)], start=1.0)  # no hedge
    counts = log.snapshot()
    assert counts.hedges == {"started": 1, "won": 1, "cancelled": 1, "refused": 0}
    assert sum(counts.requests) == 2 and counts.requests[0] == 2
    assert counts.attempts[0] == 2  # the cancelled attempt has no outcome
    assert counts.retries == 0


def test_a_call_refused_by_the_concurrency_limit_makes_no_attempt() -> None:
    up = upstream(policy(concurrency_limit=1))
    first = up.start_hedged(0.0)
    refused = up.start_hedged(0.0)
    assert refused.next(0.0) == Fail(FailReason.CONCURRENCY_LIMIT, None)
    assert refused.attempts == 0
    drive(first, [answer(0.01)])
    assert isinstance(up.start_hedged(1.0).next(1.0), Attempt)  # the permit came back


def test_a_retry_after_the_hedges_waits_its_backoff_and_is_not_hedged() -> None:
    up = upstream(policy(delay=0.1, max_attempts=2, retries=2))
    call = up.start_hedged(0.0)
    failing = status(503, 0.01)
    final, steps, _ = drive(call, [failing, failing, answer(1.0)])
    assert final == Done(answer(1.0))  # the retry was slow, yet nothing hedged it
    assert len(attempts(steps)) == 3 and call.hedges == 1 and not call.hedge_won


def test_the_recent_percentile_is_none_until_enough_samples_then_the_nearest_rank() -> None:
    tracker = RecentPercentile(0.95, size=1000, every=50, minimum=100)
    for ms in range(1, 100):
        tracker.add(ms / 1000)
    assert tracker.value is None
    tracker.add(0.1)  # the 100th
    assert tracker.value == pytest.approx(0.095)
    for ms in range(101, 2001):  # the ring keeps the last 1000: 1.001 s .. 2 s
        tracker.add(ms / 1000)
    assert tracker.value == pytest.approx(1.950)


def test_an_adaptive_delay_hedges_only_once_the_edge_has_latencies() -> None:
    adaptive = policy().model_copy(
        update={"hedge": HedgeConfig(delay="p95", non_fatal=("5xx", "timeout"))}
    )
    up = upstream(adaptive)
    cold = up.start_hedged(0.0)
    assert isinstance(cold.next(0.0), Attempt)
    assert cold.next(5.0) == WaitAny(math.inf)  # no percentile yet: no hedge by time
    cold.cancel(5.0)
    now = 10.0
    # the cold call's 5 s outstanding, then answers of 1..99 ms: the 100th sample sets
    # p95 = 95 ms (the last call may hedge: it has a second answer ready)
    for ms in range(1, 100):
        drive(up.start_hedged(now), [answer(ms / 1000), answer(ms / 1000)], start=now)
        now += 1.0
    assert up.hedge_latency is not None and up.hedge_latency.value == pytest.approx(0.095)
    warm = up.start_hedged(now)
    _, steps, ended = drive(warm, [answer(1.0), answer(0.01)], start=now)
    assert len(attempts(steps)) == 2 and warm.hedge_won
    assert ended - now == pytest.approx(0.095 + 0.01)
