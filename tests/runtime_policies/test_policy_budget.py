"""RetryBudget against Finagle's windowed token model (see docs/policies.md)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from meshspec_runtime.policy.budget import SLICES, RetryBudget
from meshspec_runtime.policy.config import RetryBudgetConfig


def test_reserve_alone_allows_min_per_second_times_window() -> None:
    budget = RetryBudget(RetryBudgetConfig(ratio=0.2, min_per_second=10, window=10))
    assert budget.balance(0.0) == 100
    granted = sum(budget.try_withdraw(0.0) for _ in range(150))
    assert granted == 100
    assert budget.denied_total == 50
    assert budget.balance(0.0) == 0


def test_each_request_deposits_ratio_of_a_token() -> None:
    budget = RetryBudget(RetryBudgetConfig(ratio=0.2, min_per_second=0, window=10))
    assert not budget.try_withdraw(0.0)
    for _ in range(50):
        budget.on_request(0.0)
    assert budget.balance(0.0) == pytest.approx(10)
    assert sum(budget.try_withdraw(0.5) for _ in range(20)) == 10


def test_steady_traffic_gets_ratio_plus_reserve() -> None:
    """Finagle's default (20% + 10/s over 10 s) at 100 req/s: 200 + 100 retries a window."""
    budget = RetryBudget(RetryBudgetConfig(ratio=0.2, min_per_second=10, window=10))
    for i in range(1000):
        budget.on_request(i / 100)  # 100 req/s over [0, 10)
    assert budget.window_counts(9.99) == (1000, 0)
    assert sum(budget.try_withdraw(9.99) for _ in range(400)) == 300


def test_deposits_expire_with_their_slice() -> None:
    budget = RetryBudget(RetryBudgetConfig(ratio=1.0, min_per_second=0, window=10))
    for _ in range(5):
        budget.on_request(0.3)  # slice [0, 1)
    assert budget.balance(9.99) == 5  # slices 0..9
    assert budget.balance(10.0) == 0  # slices 1..10: expired


def test_withdrawals_expire_too_so_the_reserve_is_a_rate() -> None:
    budget = RetryBudget(RetryBudgetConfig(ratio=0.0, min_per_second=1, window=10))
    assert sum(budget.try_withdraw(0.0) for _ in range(20)) == 10
    assert not budget.try_withdraw(9.9)
    assert budget.try_withdraw(10.0)  # the withdrawals of slice 0 left the window
    assert budget.balance(10.0) == 9  # all ten came back, one is spent again


def test_zero_budget_never_grants() -> None:
    budget = RetryBudget(RetryBudgetConfig(ratio=0.0, min_per_second=0, window=1))
    for t in range(10):
        budget.on_request(float(t))
        assert not budget.try_withdraw(float(t))


ops = st.lists(
    st.tuples(st.sampled_from([0.0, 0.0, 0.01, 0.3, 1.0, 4.0]), st.booleans()), max_size=300
)
budget_configs = st.builds(
    RetryBudgetConfig,
    ratio=st.sampled_from([0.0, 0.1, 0.2, 1 / 3, 0.5, 1.0]),
    min_per_second=st.sampled_from([0.0, 0.1, 0.5, 1.0, 3.0]),
    window=st.sampled_from([0.5, 1.0, 2.0, 10.0]),
)


@given(config=budget_configs, steps=ops)
def test_spent_retries_never_exceed_the_budget_of_their_window(
    config: RetryBudgetConfig, steps: list[tuple[float, bool]]
) -> None:
    """Replays every decision with a naive oracle over the raw event log: each granted retry
    keeps retries <= ratio * requests + min_per_second * window in the window it falls in,
    and each refusal happens only when one more retry would break that."""
    budget = RetryBudget(config)
    width = config.window / SLICES
    reserve = config.min_per_second * config.window
    log: list[tuple[int, str]] = []  # (slice, "request" | "retry")
    now = 0.0
    for dt, is_retry in steps:
        now += dt
        current = math.floor(now / width)
        if not is_retry:
            budget.on_request(now)
            log.append((current, "request"))
            continue
        in_window = [kind for s, kind in log if s > current - SLICES]
        requests = in_window.count("request")
        retries = in_window.count("retry")
        granted = budget.try_withdraw(now)
        assert granted == (reserve + config.ratio * requests - retries >= 1)
        if granted:
            log.append((current, "retry"))
            assert retries + 1 <= config.ratio * requests + reserve + 1e-9


def test_a_deposit_racing_a_window_move_counts_in_its_own_slice() -> None:
    """The lock-free deposit path, interleaved by hand: a thread has read the newest slice's
    counter, another moves the window on, then the first deposits on the counter it read."""
    budget = RetryBudget(RetryBudgetConfig(ratio=1.0, min_per_second=0, window=10))
    budget.on_request(0.5)  # slice 0
    _edge, stale = budget.newest  # what a racing on_request(0.6) read before being paused
    budget.on_request(3.5)  # slice 3 becomes the newest
    next(stale)  # the paused deposit lands: slice 0, at its own time
    assert budget.window_counts(3.5) == (3, 0)
    assert budget.window_counts(9.99) == (3, 0)
    assert budget.window_counts(10.0) == (1, 0)  # slice 0 expired with both its deposits
    next(stale)  # a deposit paused for a whole window lands on a dropped counter
    assert budget.window_counts(10.0) == (1, 0)  # its time was outside the window anyway
