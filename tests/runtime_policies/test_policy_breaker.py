"""CircuitBreaker against resilience4j's (rate mode) and pybreaker's (consecutive mode) rules."""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable

import pybreaker
import pytest
from hypothesis import given
from hypothesis import strategies as st
from meshspec_runtime.policy.breaker import REJECTED, BreakerState, CircuitBreaker
from meshspec_runtime.policy.config import (
    CircuitBreakerConfig,
    CountWindow,
    SlowCallConfig,
    TimeWindow,
)
from meshspec_runtime.policy.limits import MAX_DURATION_SECONDS, MAX_MULTIPLIER
from meshspec_runtime.policy.outcome import Outcome, OutcomeKind

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
Listener = Callable[[BreakerState, BreakerState, float], None]


def call(breaker: CircuitBreaker, now: float, failed: bool, duration: float = 0.01) -> bool:
    """One admitted-or-rejected call; returns whether it was admitted."""
    if not breaker.try_acquire(now):
        return False
    if failed:
        breaker.on_failure(now, duration)
    else:
        breaker.on_success(now, duration)
    return True


def rate_config(**overrides: object) -> CircuitBreakerConfig:
    settings: dict[str, object] = {
        "window": CountWindow(size=10),
        "minimum_calls": 5,
        "failure_rate": 0.5,
        "open_for": 10.0,
        "half_open_calls": 4,
    }
    settings.update(overrides)
    return CircuitBreakerConfig.model_validate(settings)


# -- rate mode, count window --------------------------------------------------------------


def test_no_trip_below_minimum_calls() -> None:
    breaker = CircuitBreaker(rate_config())
    for _ in range(4):
        call(breaker, 0.0, failed=True)
    assert breaker.state(0.0) is CLOSED  # 100% failures, but only 4 of 5 minimum calls
    call(breaker, 0.0, failed=True)
    assert breaker.state(0.0) is OPEN


def test_trips_when_rate_reaches_threshold_exactly() -> None:
    breaker = CircuitBreaker(rate_config())
    for failed in [False] * 5 + [True] * 4:
        call(breaker, 0.0, failed)
    assert breaker.state(0.0) is CLOSED  # 4 of 9 = 44%
    call(breaker, 0.0, failed=True)
    assert breaker.state(0.0) is OPEN  # 5 of 10 = 50%: "equal or greater" trips


def test_count_window_forgets_the_oldest_call() -> None:
    breaker = CircuitBreaker(rate_config(window=CountWindow(size=4), minimum_calls=4))
    for failed in (True, True, False, False):
        call(breaker, 0.0, failed)
    # [F F S S] is 50%: the 4th call reached the minimum and tripped
    assert breaker.state(0.0) is OPEN
    breaker = CircuitBreaker(rate_config(window=CountWindow(size=4), minimum_calls=4))
    for failed in (True, False, False, False, False, True):
        call(breaker, 0.0, failed)
    # the first failure left the window: [S S S F] is 25%
    assert breaker.state(0.0) is CLOSED
    call(breaker, 0.0, failed=True)  # [S S F F]
    assert breaker.state(0.0) is OPEN


def test_rejects_while_open_and_counts_rejections() -> None:
    breaker = CircuitBreaker(rate_config())
    for _ in range(5):
        call(breaker, 0.0, failed=True)
    assert [breaker.try_acquire(t) for t in (1.0, 5.0, 9.999)] == [False] * 3
    assert breaker.rejected_total == 3
    assert breaker.admit(9.999) == REJECTED


# -- rate mode, time window ---------------------------------------------------------------


def test_time_window_counts_the_last_n_seconds_in_whole_seconds() -> None:
    config = rate_config(window=TimeWindow(size=10), minimum_calls=3)
    breaker = CircuitBreaker(config)
    call(breaker, 0.2, failed=True)
    call(breaker, 0.9, failed=True)
    call(breaker, 9.99, failed=True)  # seconds 0..9: all three count
    assert breaker.state(9.99) is OPEN

    breaker = CircuitBreaker(config)
    call(breaker, 0.2, failed=True)
    call(breaker, 0.9, failed=True)
    call(breaker, 10.0, failed=True)  # seconds 1..10: second 0 has expired
    assert breaker.state(10.0) is CLOSED
    call(breaker, 10.5, failed=True)
    call(breaker, 19.9, failed=True)  # seconds 10..19
    assert breaker.state(19.9) is OPEN


def test_time_window_expires_successes_too() -> None:
    breaker = CircuitBreaker(rate_config(window=TimeWindow(size=5), minimum_calls=2))
    for _ in range(8):
        call(breaker, 0.0, failed=False)
    call(breaker, 1.0, failed=True)
    assert breaker.state(1.0) is CLOSED  # 1 of 9
    call(breaker, 5.5, failed=True)  # seconds 1..5: the 8 successes expired, 2 of 2 failed
    assert breaker.state(5.5) is OPEN


# -- slow calls ---------------------------------------------------------------------------


def test_slow_successes_trip_the_breaker() -> None:
    slow = SlowCallConfig(over=1.0, rate=0.6)
    breaker = CircuitBreaker(rate_config(slow_calls=slow, failure_rate=1.0))
    for duration in (1.0, 1.0, 2.0, 2.0):  # exactly `over` is not slow
        call(breaker, 0.0, failed=False, duration=duration)
    assert breaker.state(0.0) is CLOSED  # 2 slow of 4, below the minimum of 5 calls
    call(breaker, 0.0, failed=False, duration=1.5)
    assert breaker.state(0.0) is OPEN  # 3 slow of 5 = 60%, no failure at all


def test_a_window_full_of_fast_successes_still_records_slow_calls_and_failures() -> None:
    """The lock-free healthy path must not swallow what changes the window."""
    slow = SlowCallConfig(over=1.0, rate=0.5)
    config = rate_config(window=CountWindow(size=4), minimum_calls=4, slow_calls=slow)
    breaker = CircuitBreaker(config)
    for _ in range(10):
        call(breaker, 0.0, failed=False)  # full of fast successes
    call(breaker, 0.0, failed=False, duration=2.0)
    assert breaker.state(0.0) is CLOSED  # 1 slow of 4
    call(breaker, 0.0, failed=False, duration=2.0)
    assert breaker.state(0.0) is OPEN  # 2 slow of 4

    breaker = CircuitBreaker(config)
    for _ in range(10):
        call(breaker, 0.0, failed=False)
    for failed in (True, False, False, False, True):
        call(breaker, 0.0, failed)
    # [F S S S] + F = [S S S F]: 25%. Had the successes after the first failure been
    # skipped, the window would be [S S F F] and open.
    assert breaker.state(0.0) is CLOSED
    call(breaker, 0.0, failed=True)
    assert breaker.state(0.0) is OPEN  # [S S F F]


def test_fast_successes_push_slow_calls_out_of_the_window() -> None:
    slow = SlowCallConfig(over=1.0, rate=0.5)
    breaker = CircuitBreaker(
        rate_config(window=CountWindow(size=4), minimum_calls=4, slow_calls=slow)
    )
    for duration in (0.1, 0.1, 0.1, 2.0, 0.1, 0.1, 0.1, 0.1):
        call(breaker, 0.0, failed=False, duration=duration)
    call(breaker, 0.0, failed=False, duration=2.0)
    assert breaker.state(0.0) is CLOSED  # [S S S slow]: the first slow call has left


def test_slow_failures_count_for_both_rates() -> None:
    slow = SlowCallConfig(over=1.0, rate=0.5)
    breaker = CircuitBreaker(rate_config(slow_calls=slow, failure_rate=0.9))
    for _ in range(2):
        call(breaker, 0.0, failed=True, duration=3.0)
    for _ in range(3):
        call(breaker, 0.0, failed=False, duration=0.1)
    assert breaker.state(0.0) is CLOSED  # 2/5 failed, 2/5 slow
    call(breaker, 0.0, failed=True, duration=3.0)
    assert breaker.state(0.0) is OPEN  # 3/6 slow = 50%


# -- consecutive mode (pybreaker) ---------------------------------------------------------


def test_consecutive_mode_trips_on_a_run_and_a_success_resets_it() -> None:
    breaker = CircuitBreaker(CircuitBreakerConfig(mode="consecutive", consecutive_failures=3))
    for failed in (True, True, False, True, True):
        call(breaker, 0.0, failed)
    assert breaker.state(0.0) is CLOSED
    call(breaker, 0.0, failed=True)
    assert breaker.state(0.0) is OPEN


@given(st.lists(st.booleans(), max_size=60), st.integers(min_value=1, max_value=6))
def test_consecutive_mode_matches_pybreaker(outcomes: list[bool], fail_max: int) -> None:
    """Closed-phase decisions equal pybreaker's for any run of outcomes."""
    ours = CircuitBreaker(CircuitBreakerConfig(mode="consecutive", consecutive_failures=fail_max))
    theirs = pybreaker.CircuitBreaker(fail_max=fail_max, reset_timeout=3600)

    def fail() -> None:
        raise RuntimeError("boom")

    for failed in outcomes:
        if theirs.current_state == pybreaker.STATE_OPEN:
            assert ours.state(0.0) is OPEN
            return
        assert ours.state(0.0) is CLOSED
        assert call(ours, 0.0, failed)
        with contextlib.suppress(RuntimeError, pybreaker.CircuitBreakerError):
            theirs.call(fail if failed else (lambda: None))
    assert (ours.state(0.0) is OPEN) == (theirs.current_state == pybreaker.STATE_OPEN)


def test_consecutive_half_open_any_failure_reopens_and_n_successes_close() -> None:
    config = CircuitBreakerConfig(
        mode="consecutive", consecutive_failures=1, half_open_calls=2, open_for=1.0
    )
    breaker = CircuitBreaker(config)
    call(breaker, 0.0, failed=True)
    assert breaker.state(1.0) is HALF_OPEN
    call(breaker, 1.0, failed=False)
    assert breaker.state(1.0) is HALF_OPEN  # 1 of 2 trials succeeded
    call(breaker, 1.0, failed=True)
    assert breaker.state(1.0) is OPEN
    call(breaker, 2.0, failed=False)
    call(breaker, 2.0, failed=False)
    assert breaker.state(2.0) is CLOSED


# -- open and half-open -------------------------------------------------------------------


def tripped(
    config: CircuitBreakerConfig, at: float = 0.0, listeners: tuple[Listener, ...] = ()
) -> CircuitBreaker:
    breaker = CircuitBreaker(config, listeners=listeners)
    while breaker.state(at) is CLOSED:
        call(breaker, at, failed=True)
    return breaker


def test_open_turns_half_open_after_open_for() -> None:
    breaker = tripped(rate_config(open_for=10.0), at=5.0)
    assert breaker.state(14.999) is OPEN
    assert not breaker.try_acquire(14.999)
    assert breaker.state(15.0) is HALF_OPEN


def test_half_open_admits_exactly_the_probe_count_and_cancel_returns_a_slot() -> None:
    breaker = tripped(rate_config(half_open_calls=3))
    admitted = [breaker.try_acquire(10.0) for _ in range(5)]
    assert admitted == [True, True, True, False, False]
    assert breaker.probes_admitted == 3
    breaker.on_cancel(10.0)
    assert breaker.probes_admitted == 2
    assert breaker.try_acquire(10.0)
    assert not breaker.try_acquire(10.0)


def test_half_open_reopens_as_soon_as_the_failure_rate_is_certain() -> None:
    breaker = tripped(rate_config(half_open_calls=4, failure_rate=0.5))
    for _ in range(4):
        assert breaker.try_acquire(10.0)
    breaker.on_failure(10.1, 0.01)
    assert breaker.state(10.1) is HALF_OPEN  # 1 of 4 failed: could still end at 25%
    breaker.on_failure(10.2, 0.01)
    assert breaker.state(10.2) is OPEN  # 2 of 4 failed: at least 50% whatever comes next


def test_half_open_closes_as_soon_as_success_is_certain() -> None:
    breaker = tripped(rate_config(half_open_calls=4, failure_rate=0.5))
    for _ in range(4):
        assert breaker.try_acquire(10.0)
    breaker.on_success(10.1, 0.01)
    breaker.on_success(10.1, 0.01)
    assert breaker.state(10.1) is HALF_OPEN  # 2 pending could still make 50%
    breaker.on_success(10.2, 0.01)
    assert breaker.state(10.2) is CLOSED  # at most 1 of 4 can fail now
    # the last probe completes in CLOSED and counts in the fresh window
    breaker.on_failure(10.3, 0.01)
    assert breaker.state(10.3) is CLOSED


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("threshold", [0.2, 0.34, 0.5, 0.75, 1.0])
def test_half_open_verdict_equals_resilience4j_evaluation_after_all_probes(
    n: int, threshold: float
) -> None:
    """Deciding early never changes the verdict resilience4j reaches after all n probes."""
    for outcomes in itertools.product((False, True), repeat=n):
        breaker = tripped(rate_config(half_open_calls=n, failure_rate=threshold))
        for _ in range(n):
            assert breaker.try_acquire(10.0)
        for failed in outcomes:
            if failed:
                breaker.on_failure(10.0, 0.01)
            else:
                breaker.on_success(10.0, 0.01)
        expected = OPEN if sum(outcomes) / n >= threshold else CLOSED
        assert breaker.state(10.0) is expected, outcomes


def test_open_time_grows_after_failed_probes_up_to_the_cap_and_resets_on_close() -> None:
    config = rate_config(open_for=10.0, open_for_max=35.0, open_for_multiplier=2.0)
    breaker = tripped(config)
    now = 0.0
    seen = [breaker.open_time]
    for _ in range(3):
        now += breaker.open_time  # two failed probes of four make 50%: reopen
        assert breaker.state(now) is HALF_OPEN
        call(breaker, now, failed=True)
        call(breaker, now, failed=True)
        assert breaker.state(now) is OPEN
        seen.append(breaker.open_time)
    assert seen == [10.0, 20.0, 35.0, 35.0]
    assert breaker.state(now + 34.9) is OPEN
    now += 35.0
    for _ in range(3):
        call(breaker, now, failed=False)
    assert breaker.state(now) is CLOSED
    assert breaker.open_time == 10.0
    while breaker.state(now) is CLOSED:
        call(breaker, now, failed=True)
    assert breaker.state(now + 9.99) is OPEN
    assert breaker.state(now + 10.0) is HALF_OPEN


def test_closing_starts_a_fresh_window() -> None:
    breaker = CircuitBreaker(rate_config(window=CountWindow(size=10), minimum_calls=10))
    for failed in [True] * 5 + [False] * 5:
        call(breaker, 0.0, failed)
    assert breaker.state(0.0) is OPEN
    for _ in range(3):
        call(breaker, 10.0, failed=False)
    assert breaker.state(10.0) is CLOSED
    # had the old window survived, [F F F F S S S S S F] would be 50% and trip
    for failed in [False] * 9 + [True]:
        call(breaker, 10.0, failed)
    assert breaker.state(10.0) is CLOSED


def test_without_open_for_max_the_open_time_stays_fixed() -> None:
    breaker = tripped(rate_config(open_for=10.0))
    for k in range(1, 4):
        now = 10.0 * k
        assert breaker.state(now) is HALF_OPEN
        call(breaker, now, failed=True)
        call(breaker, now, failed=True)
        assert breaker.open_time == 10.0


def test_outcomes_arriving_while_open_are_ignored() -> None:
    breaker = CircuitBreaker(rate_config(half_open_calls=1))
    for _ in range(3):
        assert breaker.try_acquire(0.0)  # in flight when the breaker trips
    while breaker.state(0.0) is CLOSED:
        call(breaker, 0.0, failed=True)
    for _ in range(3):
        breaker.on_failure(1.0, 1.0)
    assert breaker.state(10.0) is HALF_OPEN
    assert breaker.try_acquire(10.0)  # the probe slot was not touched
    breaker.on_success(10.0, 0.01)
    assert breaker.state(10.0) is CLOSED


def test_tickets_keep_stale_outcomes_away_from_probes() -> None:
    breaker = CircuitBreaker(rate_config(half_open_calls=1, open_for=1.0))
    old = breaker.admit(0.0)  # a call that will outlive the open period
    assert old != REJECTED
    while breaker.state(0.0) is CLOSED:
        call(breaker, 0.0, failed=True)
    probe = breaker.admit(2.0)
    assert probe not in (REJECTED, old)
    breaker.on_cancel(2.5, old)  # stale: must not free the probe slot
    assert not breaker.try_acquire(2.5)
    breaker.on_failure(2.6, 5.0, old)  # stale: must not count as the probe's failure
    assert breaker.state(2.6) is HALF_OPEN
    breaker.on_success(2.7, 0.01, probe)
    assert breaker.state(2.7) is CLOSED


def test_untracked_outcomes_in_half_open_count_only_while_probes_are_in_flight() -> None:
    breaker = tripped(rate_config(half_open_calls=2))
    breaker.on_failure(10.0, 0.01)  # nothing in flight: a straggler, ignored
    breaker.on_cancel(10.0)
    assert breaker.state(10.0) is HALF_OPEN
    assert breaker.probes_admitted == 0


# -- listeners and classification --------------------------------------------------------


def test_listeners_see_every_transition_in_order(
    transitions: tuple[list[tuple[BreakerState, BreakerState, float]], Listener],
) -> None:
    seen, listener = transitions
    late: list[BreakerState] = []
    breaker = tripped(rate_config(half_open_calls=1, open_for=5.0), at=1.0, listeners=(listener,))
    breaker.add_listener(lambda old, new, now: late.append(new))
    call(breaker, 6.0, failed=True)
    call(breaker, 11.0, failed=False)
    assert seen == [(CLOSED, OPEN, 1.0), (OPEN, HALF_OPEN, 6.0), (HALF_OPEN, OPEN, 6.0),
                    (OPEN, HALF_OPEN, 11.0), (HALF_OPEN, CLOSED, 11.0)]  # fmt: skip
    assert late == [HALF_OPEN, OPEN, HALF_OPEN, CLOSED]


def test_a_listener_may_query_the_breaker() -> None:
    seen: list[BreakerState] = []
    breaker = CircuitBreaker(rate_config(open_for=1.0))
    breaker.add_listener(lambda old, new, now: seen.append(breaker.state(now)))
    tripped_at = 0.0
    while breaker.state(tripped_at) is CLOSED:
        call(breaker, tripped_at, failed=True)
    assert breaker.state(1.0) is HALF_OPEN
    assert seen == [OPEN, HALF_OPEN]  # no deadlock, and each listener saw the new state


def test_is_failure_follows_failure_on() -> None:
    breaker = CircuitBreaker(CircuitBreakerConfig(failure_on=("503", "timeout")))
    assert breaker.is_failure.matches(Outcome(OutcomeKind.ANSWER, status=503))
    assert breaker.is_failure.matches(Outcome(OutcomeKind.TIMEOUT))
    assert not breaker.is_failure.matches(Outcome(OutcomeKind.ANSWER, status=500))
    assert not breaker.is_failure.matches(Outcome(OutcomeKind.RESET))


def test_open_time_is_finite_and_positive() -> None:
    # the largest settings the model takes: 1000 ** 120 would overflow a float
    breaker = tripped(
        rate_config(
            open_for=0.5, open_for_max=MAX_DURATION_SECONDS, open_for_multiplier=MAX_MULTIPLIER
        )
    )
    now = 0.0
    for _ in range(120):
        now += breaker.open_time
        call(breaker, now, failed=True)
        call(breaker, now, failed=True)
    assert math.isfinite(breaker.open_time)
    assert breaker.open_time == MAX_DURATION_SECONDS
