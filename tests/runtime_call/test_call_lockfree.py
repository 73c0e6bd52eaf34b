"""Threads hammer the lock-free parts of the call path through real calls (``call_sync``):
the bulkhead's permits and the adaptive throttle's counts (see the docstrings of
``policy.bulkhead`` and ``policy.throttle`` for the races they accept). The checks are the limits no
interleaving may break and conservation laws (nothing leaks, nothing goes negative)."""

from __future__ import annotations

import itertools
import math
import random
import sys
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.drivers.classify import CallFailed
from meshspec_runtime.drivers.sync import call_sync
from meshspec_runtime.policy.config import AdaptiveThrottleConfig, RetryConfig, UpstreamPolicy
from meshspec_runtime.policy.throttle import AdaptiveThrottle
from meshspec_runtime.policy.upstream import UpstreamPolicies
from runtime_call_kit import endpoints
from thread_kit import THREADS, frequent_thread_switches, hammer

CALLS = 6_000


@pytest.fixture(autouse=True)
def _switch_often() -> Iterator[None]:
    with frequent_thread_switches():
        yield


def test_bulkhead_never_admits_more_calls_than_its_limit() -> None:
    limit = 3
    up = UpstreamPolicies(
        UpstreamPolicy(retry=RetryConfig(attempts=1), concurrency_limit=limit),
        endpoints(4),
        rng=random.Random(0),
    )
    guard = threading.Lock()
    inside = {"now": 0, "max": 0}
    results: Counter[str] = Counter()

    def attempt(endpoint: Endpoint, timeout: float) -> str:
        with guard:
            inside["now"] += 1
            inside["max"] = max(inside["max"], inside["now"])
        for _ in range(20):  # long enough for other threads to try their luck meanwhile
            pass
        with guard:
            inside["now"] -= 1
        return endpoint.id

    def work(index: int) -> None:
        mine: Counter[str] = Counter()
        for _ in range(CALLS):
            try:
                call_sync(up, attempt)
                mine["done"] += 1
            except CallFailed as failed:
                mine[failed.reason.value] += 1
        with guard:
            results.update(mine)

    hammer(work)
    assert up.bulkhead is not None
    assert 0 < inside["max"] <= limit  # never more calls inside than permits
    assert up.bulkhead.in_use == 0  # every permit came back, none went missing
    assert 0 < len(up.bulkhead.free) <= limit  # no token was made beyond the limit
    assert sum(results.values()) == THREADS * CALLS
    assert results["done"] > 0 and results["concurrency_limit"] > 0
    assert up.bulkhead.rejected_total == results["concurrency_limit"]


def test_throttle_counts_add_up_while_its_window_moves() -> None:
    """Calls count in the throttle without a lock while the shared clock moves the window
    slice after slice: no count is ever made up, and under the GIL none is lost."""
    policy = UpstreamPolicy(
        retry=RetryConfig(attempts=1),
        adaptive_throttle=AdaptiveThrottleConfig(k=1.1, window=600),  # 1 s slices
    )
    up = UpstreamPolicies(policy, endpoints(3), rng=random.Random(0))
    ticks = itertools.count()  # next() is atomic: the threads share one clock

    def clock() -> float:
        return next(ticks) * 0.001  # about 100 slices over the test, all inside the window

    guard = threading.Lock()
    truth = Counter[str]()

    def work(index: int) -> None:
        rng = random.Random(index)
        mine = Counter[str]()

        def attempt(endpoint: Endpoint, timeout: float) -> str:
            mine["attempts"] += 1
            if rng.random() < 0.5:  # an overloaded upstream: half the attempts fail
                raise ConnectionRefusedError(endpoint.id)
            mine["accepts"] += 1
            return endpoint.id

        for _ in range(CALLS):
            try:
                call_sync(up, attempt, clock=clock)
            except CallFailed as failed:
                mine[failed.reason.value] += 1
        with guard:
            truth.update(mine)

    hammer(work)
    throttle = up.throttle
    assert throttle is not None
    now = clock()
    requests, accepts = throttle.window_counts(now)
    made = truth["attempts"] + truth["throttled"]  # every request the throttle decided on
    assert truth["throttled"] > 0 and truth["accepts"] > 0  # both paths were taken
    assert throttle.rejected_total <= truth["throttled"]
    assert 0 <= requests <= made and 0 <= accepts <= truth["accepts"]
    moves = math.ceil(now)  # slices the window moved through
    # under the GIL nothing runs between reading the newest slice and adding to it, and a
    # count that moves the window is added under the lock: none is lost. Without a GIL, a
    # count is lost only by a thread stalled across two moves, or by two adding at once.
    if getattr(sys, "_is_gil_enabled", lambda: True)():
        assert (requests, accepts) == (made, truth["accepts"])
        assert throttle.rejected_total == truth["throttled"]
    else:
        assert requests >= made - THREADS * moves and accepts >= truth["accepts"] - THREADS * moves


def test_throttle_picks_up_a_count_added_to_a_slice_just_folded() -> None:
    """The race the lock-free throttle accepts at a slice edge, played out step by step: a
    thread read the newest slice, another moved the window, the first adds its count late."""
    throttle = AdaptiveThrottle(AdaptiveThrottleConfig(k=2.0, window=60))
    throttle.on_accept(0.5)
    stale = throttle.current[1]  # what a thread about to count at 0.9 holds (no GIL)
    throttle.on_accept(1.5)  # another thread moves the window to the next slice
    stale[1] += 1  # the first thread's accept lands in the slice already folded
    assert throttle.window_counts(1.5) == (0, 3)
    throttle.on_accept(2.5)  # the next move folds the late count into its own slice
    assert throttle.window_counts(2.5) == (0, 4)
    assert throttle.window_counts(60.7) == (0, 2)  # the slice of 0.5 and 0.9 has left
