"""Folding a call log's answers in one batch counts them as one by one would."""

from __future__ import annotations

import bisect

from hypothesis import given
from hypothesis import strategies as st
from meshspec_runtime.observe.calls import CallLog, add_sorted
from meshspec_runtime.observe.names import DURATION_BUCKETS, OUTCOMES
from meshspec_runtime.policy.outcome import condition_set

durations = st.lists(
    st.one_of(
        st.sampled_from(DURATION_BUCKETS),  # exactly on a bound: the bucket it closes
        st.floats(min_value=0.0, max_value=2 * DURATION_BUCKETS[-1], allow_nan=False),
    ),
    max_size=300,
)


def one_by_one(values: list[float]) -> list[int]:
    buckets = [0] * (len(DURATION_BUCKETS) + 1)
    for value in values:
        buckets[bisect.bisect_left(DURATION_BUCKETS, value)] += 1
    return buckets


@given(durations)
def test_sorted_batches_land_in_the_buckets_bisect_picks(values: list[float]) -> None:
    buckets = [0] * (len(DURATION_BUCKETS) + 1)
    add_sorted(sorted(values), buckets)
    assert buckets == one_by_one(values)


@given(st.lists(durations, max_size=4))
def test_a_log_folded_in_batches_counts_every_answer(batches: list[list[float]]) -> None:
    log = CallLog(condition_set(("5xx",)), condition_set(("5xx",)))
    total = 0.0
    for batch in batches:
        log.answers.extend(batch)
        folded = 0.0
        for value in batch:  # one by one, in the order the request path appended them
            folded += value
        total += folded
        log.snapshot()
    counts = log.snapshot()
    everything = [value for batch in batches for value in batch]
    assert counts.buckets == one_by_one(everything)
    assert counts.duration_sum == total
    success = OUTCOMES.index("success")  # the label of an answer no condition matches
    assert counts.requests[success] == counts.attempts[success] == len(everything)
    assert not log.answers
