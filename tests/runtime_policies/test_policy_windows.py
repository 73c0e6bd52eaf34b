"""SlidingCounters (the bucketed window under the budget, throttle and time-based breaker)
against a naive recount of every event, including times that arrive out of order."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from meshspec_runtime.policy.windows import SlidingCounters


@given(
    window=st.sampled_from([0.5, 1.0, 3.0, 10.0, 120.0]),
    slices=st.integers(1, 12),
    steps=st.lists(
        st.tuples(
            st.floats(-2.0, 30.0, allow_nan=False),  # negative: an out-of-order time
            st.integers(0, 2),
            st.integers(1, 3),
        ),
        max_size=150,
    ),
)
def test_totals_equal_a_naive_recount(
    window: float, slices: int, steps: list[tuple[float, int, int]]
) -> None:
    counters = SlidingCounters(window, slices, 3)
    width = window / slices
    log: list[tuple[int, int, int]] = []  # (slice, channel, amount)
    newest = -math.inf
    now = 0.0
    for dt, channel, amount in steps:
        now = max(0.0, now + dt)
        # the documented rule: a time older than the newest slice counts in the newest slice
        index = max(math.floor(now / width), newest)
        newest = index
        counters.add(now, channel, amount)
        log.append((int(index), channel, amount))
        for c in range(3):
            expected = sum(a for s, ch, a in log if ch == c and s > index - slices)
            assert counters.total(now, c) == expected


def test_a_long_gap_clears_everything() -> None:
    counters = SlidingCounters(10.0, 10, 1)
    for t in range(10):
        counters.add(float(t), 0, 5)
    assert counters.total(9.5, 0) == 50
    assert counters.total(14.0, 0) == 25  # slices 5..14
    assert counters.total(1e9, 0) == 0
    counters.add(1e9, 0)
    assert counters.total(1e9, 0) == 1


def test_reset_forgets_counts_and_position() -> None:
    counters = SlidingCounters(4.0, 4, 2)
    counters.add(100.0, 1, 3)
    counters.reset()
    assert counters.total(0.0, 1) == 0
    counters.add(0.0, 1)
    assert counters.totals == [0, 1]


def test_bad_shapes_are_refused() -> None:
    for args in [(0.0, 1, 1), (1.0, 0, 1), (1.0, 1, 0)]:
        with pytest.raises(ValueError, match="window must be"):
            SlidingCounters(*args)
