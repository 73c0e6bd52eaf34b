"""AdaptiveThrottle against the SRE book's client-side throttling formula."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from meshspec_runtime.policy.config import AdaptiveThrottleConfig
from meshspec_runtime.policy.throttle import AdaptiveThrottle


def test_probability_follows_the_formula() -> None:
    throttle = AdaptiveThrottle(AdaptiveThrottleConfig(k=2.0, window=60))
    rng = random.Random(0)
    for _ in range(100):
        throttle.should_reject(1.0, rng)
    for _ in range(20):
        throttle.on_accept(1.0)
    assert throttle.window_counts(1.0) == (100, 20)
    assert throttle.reject_probability(1.0) == pytest.approx((100 - 2 * 20) / 101)


def test_no_rejection_while_accepts_keep_up() -> None:
    throttle = AdaptiveThrottle(AdaptiveThrottleConfig(k=2.0, window=60))
    rng = random.Random(1)
    for i in range(1000):
        assert not throttle.should_reject(i / 100, rng)
        if i % 2 == 0:  # half the requests accepted: requests == k * accepts
            throttle.on_accept(i / 100)
    assert throttle.reject_probability(10.0) == 0.0
    assert throttle.rejected_total == 0


def test_counts_leave_the_window() -> None:
    throttle = AdaptiveThrottle(AdaptiveThrottleConfig(k=1.5, window=10))
    rng = random.Random(2)
    for _ in range(50):
        throttle.should_reject(0.5, rng)
    assert throttle.reject_probability(9.9) > 0.9
    assert throttle.reject_probability(10.0) == 0.0
    assert throttle.window_counts(10.0) == (0, 0)


def test_long_windows_use_wider_buckets() -> None:
    throttle = AdaptiveThrottle(AdaptiveThrottleConfig(window=1200))
    throttle.on_accept(0.0)
    assert throttle.window_counts(1199.0) == (0, 1)
    assert throttle.window_counts(1200.0) == (0, 0)


@given(
    k=st.sampled_from([1.0, 1.5, 2.0, 3.0]),
    seed=st.integers(0, 2**32),
    steps=st.lists(st.tuples(st.sampled_from([0.0, 0.1, 1.0, 7.0]), st.booleans()), max_size=200),
)
def test_decisions_match_the_formula_replayed_with_a_twin_generator(
    k: float, seed: int, steps: list[tuple[float, bool]]
) -> None:
    """An oracle recounting the raw log decides exactly as the throttle, for the same seed."""
    window = 10.0
    throttle = AdaptiveThrottle(AdaptiveThrottleConfig(k=k, window=window))
    rng, twin = random.Random(seed), random.Random(seed)
    log: list[tuple[int, bool]] = []  # (second, is_accept)
    now = 0.0
    for dt, accepted in steps:
        now += dt
        second = math.floor(now)
        recent = [a for s, a in log if s > second - window]
        requests = recent.count(False)
        accepts = recent.count(True)
        p = max(0.0, (requests - k * accepts) / (requests + 1))
        assert throttle.reject_probability(now) == pytest.approx(p)
        expected = p > 0 and twin.random() < p
        assert throttle.should_reject(now, rng) == expected
        log.append((second, False))
        if accepted and not expected:
            throttle.on_accept(now)
            log.append((second, True))


def test_identical_seeds_give_identical_decisions() -> None:
    def run(seed: int) -> list[bool]:
        throttle = AdaptiveThrottle(AdaptiveThrottleConfig(k=1.1, window=5))
        rng = random.Random(seed)
        decisions = []
        for i in range(2000):
            decisions.append(throttle.should_reject(i / 100, rng))
            if i % 5 == 0:
                throttle.on_accept(i / 100)
        return decisions

    assert run(3) == run(3)
    assert run(3) != run(4)  # the decisions do depend on the draws
    assert 0 < sum(run(3)) < 2000
