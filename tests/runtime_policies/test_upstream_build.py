"""Building ``UpstreamPolicies``: what is derived from the conditions is computed once per
distinct policy and shared, and equals the definition status by status; the policies of one
upstream share one lock."""

from __future__ import annotations

import random
import threading

import pytest
from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.policy.breaker import BreakerState
from meshspec_runtime.policy.call import OVERLOAD_STATUSES
from meshspec_runtime.policy.config import (
    DEFAULT_FAILURE_ON,
    AdaptiveThrottleConfig,
    CircuitBreakerConfig,
    OutlierDetectionConfig,
    RetryBudgetConfig,
    RetryConfig,
    UpstreamPolicy,
)
from meshspec_runtime.policy.outcome import ConditionSet, Outcome, OutcomeKind
from meshspec_runtime.policy.upstream import UpstreamPolicies

ENDPOINTS = [Endpoint(id="a", address="10.0.0.1", port=80)]

CONDITION_LISTS: list[tuple[str, ...]] = [
    (),
    ("5xx",),
    ("4xx",),
    ("connect-failure", "timeout", "5xx"),
    ("gateway-error", "404"),
    ("409", "grpc:UNAVAILABLE", "reset"),
    ("4xx", "5xx"),
]


def build(
    retry_on: tuple[str, ...], failure_on: tuple[str, ...] | None, **kwargs: object
) -> UpstreamPolicies:
    policy = UpstreamPolicy(
        retry=RetryConfig(on=retry_on),
        circuit_breaker=(
            CircuitBreakerConfig(failure_on=failure_on) if failure_on is not None else None
        ),
    )
    return UpstreamPolicies(policy, ENDPOINTS, rng=random.Random(0), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("retry_on", CONDITION_LISTS)
@pytest.mark.parametrize("failure_on", [None, *CONDITION_LISTS])
def test_benign_statuses_are_those_no_condition_matches(
    retry_on: tuple[str, ...], failure_on: tuple[str, ...] | None
) -> None:
    up = build(retry_on, failure_on)
    failing = ConditionSet(failure_on if failure_on is not None else DEFAULT_FAILURE_ON)
    retrying = ConditionSet(retry_on)
    expected = {
        code
        for code in range(100, 600)
        if code not in OVERLOAD_STATUSES
        and not failing.matches(Outcome(OutcomeKind.ANSWER, status=code))
        and not retrying.matches(Outcome(OutcomeKind.ANSWER, status=code))
    }
    assert up.benign_statuses == expected
    assert up.fast_answers == {None, *expected}


def test_policies_with_the_same_conditions_share_what_is_derived_from_them() -> None:
    first = build(("5xx",), ("5xx", "timeout"))
    second = build(("5xx",), ("5xx", "timeout"))
    assert first.benign_statuses is second.benign_statuses
    assert first.fast_answers is second.fast_answers
    assert first.retry_on is second.retry_on and first.failure_on is second.failure_on
    assert first.backoff is second.backoff
    # the state is never shared
    assert first.breaker is not second.breaker and first.balancer is not second.balancer


def test_a_user_predicate_gets_its_own_conditions_and_no_fast_answers() -> None:
    def predicate(outcome: Outcome) -> bool:
        return outcome.status == 418

    shared = build(("5xx",), None)
    own = build(("5xx",), None, retry_predicate=predicate)
    assert own.retry_on is not shared.retry_on
    assert own.retry_on.matches(Outcome(OutcomeKind.ANSWER, status=418))
    assert not shared.retry_on.matches(Outcome(OutcomeKind.ANSWER, status=418))
    assert own.fast_answers == frozenset()


def test_listeners_may_use_the_policies_that_share_their_lock() -> None:
    """Transitions reach listeners outside the lock the breaker shares with the budget,
    throttle, bulkhead and outlier detector, so a listener may use any of them."""
    policy = UpstreamPolicy(
        circuit_breaker=CircuitBreakerConfig(mode="consecutive", consecutive_failures=1),
        retry=RetryConfig(budget=RetryBudgetConfig(min_per_second=1.0)),
        adaptive_throttle=AdaptiveThrottleConfig(),
        outlier_detection=OutlierDetectionConfig(),
        concurrency_limit=4,
    )
    up = UpstreamPolicies(policy, ENDPOINTS, rng=random.Random(0))
    breaker, budget, throttle, outlier, bulkhead = (
        up.breaker,
        up.budget,
        up.throttle,
        up.outlier,
        up.bulkhead,
    )
    assert breaker and budget and throttle and outlier and bulkhead
    seen: list[tuple[BreakerState, bool, tuple[int, int], frozenset[str], bool]] = []

    def listener(old: BreakerState, new: BreakerState, now: float) -> None:
        granted = budget.try_withdraw(now)
        counts = throttle.window_counts(now)
        outlier.on_failure(now, "a", 1)
        permit = bulkhead.try_acquire()
        seen.append((new, granted, counts, outlier.ejected(now), permit))
        bulkhead.release()

    breaker.add_listener(listener)
    worker = threading.Thread(target=breaker.on_failure, args=(1.0, 0.01), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "a listener waited for the lock its breaker held"
    # the reserve (1/s over 10 s) grants the retry; nothing counted yet; one failure in five
    assert seen == [(BreakerState.OPEN, True, (0, 0), frozenset(), True)]
