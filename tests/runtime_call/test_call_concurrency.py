"""8 threads x 100,000 calls through one shared UpstreamPolicies: every counter adds up."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.drivers.classify import CallFailed
from meshspec_runtime.drivers.sync import call_sync
from meshspec_runtime.policy.config import (
    BackoffConfig,
    CircuitBreakerConfig,
    OutlierDetectionConfig,
    RetryBudgetConfig,
    RetryConfig,
    UpstreamPolicy,
)
from meshspec_runtime.policy.upstream import UpstreamPolicies
from runtime_call_kit import endpoints

THREADS = 8
CALLS = 100_000


class Abandon(BaseException):
    """Stands for a cancellation arriving in the middle of an attempt."""


@dataclass
class Tally:
    attempts: int = 0
    results: Counter[str] = field(default_factory=Counter)


def worker(up: UpstreamPolicies, seed: int, tally: Tally, barrier: threading.Barrier) -> None:
    rng = random.Random(seed)
    draw = rng.random

    def attempt(endpoint: Endpoint, timeout: float) -> str:
        tally.attempts += 1
        roll = draw()
        if roll < 0.03:
            raise ConnectionRefusedError(endpoint.id)
        if roll < 0.035:
            raise Abandon()
        return endpoint.id

    barrier.wait()
    for _ in range(CALLS):
        try:
            call_sync(up, attempt, sleep=lambda delay: None)
            tally.results["done"] += 1
        except CallFailed as failed:
            tally.results[failed.reason.value] += 1
        except Abandon:
            tally.results["abandoned"] += 1


@pytest.mark.slow
def test_shared_policies_stay_consistent_under_threads() -> None:
    policy = UpstreamPolicy(
        timeout=60.0,
        retry=RetryConfig(
            attempts=3,
            backoff=BackoffConfig(base=0.001, max=0.001),
            # a window longer than the test: its counts are totals
            budget=RetryBudgetConfig(ratio=0.01, min_per_second=0.0, window=1e6),
        ),
        circuit_breaker=CircuitBreakerConfig(),
        outlier_detection=OutlierDetectionConfig(max_ejected=0.5),
        concurrency_limit=4,
    )
    up = UpstreamPolicies(policy, endpoints(5), rng=random.Random(1))
    tallies = [Tally() for _ in range(THREADS)]
    barrier = threading.Barrier(THREADS)
    threads = [
        threading.Thread(target=worker, args=(up, seed, tallies[seed], barrier))
        for seed in range(THREADS)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started

    results: Counter[str] = sum((t.results for t in tallies), Counter())
    attempts = sum(t.attempts for t in tallies)
    assert sum(results.values()) == THREADS * CALLS, results
    assert up.bulkhead is not None and up.breaker is not None and up.budget is not None
    # the bulkhead: every permit came back, every refusal is a failed call
    assert up.bulkhead.in_use == 0
    assert up.bulkhead.rejected_total == results["concurrency_limit"] > 0
    # the breaker refused exactly the BREAKER_OPEN calls, and 3% failures never tripped it
    assert up.breaker.rejected_total == results["breaker_open"] == 0
    assert up.breaker.state(time.monotonic()).value == "closed"
    # the budget: one deposit per call past the bulkhead, one withdrawal per retry
    calls_with_attempts = THREADS * CALLS - results["concurrency_limit"] - results["breaker_open"]
    requests, retries = up.budget.window_counts(time.monotonic())
    assert requests == THREADS * CALLS - results["concurrency_limit"]
    assert retries == attempts - calls_with_attempts
    assert up.budget.denied_total == results["budget_exhausted"] > 0
    # the balancer: nothing left in flight
    assert [h.active for h in up.balancer.hosts] == [0] * 5
    assert results["done"] > 0.3 * THREADS * CALLS and results["abandoned"] > 0
    print(f"{THREADS * CALLS} calls in {elapsed:.1f}s: {dict(results)}")
