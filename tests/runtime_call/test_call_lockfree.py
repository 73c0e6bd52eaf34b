"""Threads hammer the lock-free parts of the call path through real calls (``call_sync``):
the bulkhead's permits and the adaptive throttle's counts. The checks are the limits no
interleaving may break and conservation laws (nothing leaks, nothing goes negative)."""

from __future__ import annotations

import random
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.drivers.classify import CallFailed
from meshspec_runtime.drivers.sync import call_sync
from meshspec_runtime.policy.config import RetryConfig, UpstreamPolicy
from meshspec_runtime.policy.upstream import UpstreamPolicies
from runtime_call_kit import endpoints

THREADS = 8
CALLS = 6_000


@pytest.fixture(autouse=True)
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads every microsecond instead of every 5 ms, so interleavings happen."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def hammer(work: Callable[[int], None]) -> None:
    """Run ``work(thread_index)`` on 8 threads released together; re-raise any failure."""
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        start.wait()
        try:
            work(index)
        except BaseException as error:  # surfaced in the main thread below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    assert not errors, errors


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
    assert sum(results.values()) == THREADS * CALLS
    assert results["done"] > 0 and results["concurrency_limit"] > 0
    assert up.bulkhead.rejected_total == results["concurrency_limit"]
