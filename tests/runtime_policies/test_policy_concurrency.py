"""8 threads hammer one shared policy object (100,000 operations in all); every count adds up.

Each thread runs the same plan against the same object; the checks are conservation laws
(nothing lost or double-counted) and the limits no interleaving may break.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from meshspec_runtime.policy.breaker import REJECTED, BreakerState, CircuitBreaker
from meshspec_runtime.policy.budget import RetryBudget
from meshspec_runtime.policy.bulkhead import Bulkhead
from meshspec_runtime.policy.config import (
    AdaptiveThrottleConfig,
    CircuitBreakerConfig,
    CountWindow,
    OutlierDetectionConfig,
    RetryBudgetConfig,
)
from meshspec_runtime.policy.outlier import OutlierDetector
from meshspec_runtime.policy.throttle import AdaptiveThrottle
from thread_kit import THREADS, frequent_thread_switches, hammer

OPERATIONS = 100_000
PER_THREAD = OPERATIONS // THREADS


@pytest.fixture(autouse=True)
def _switch_often() -> Iterator[None]:
    with frequent_thread_switches():
        yield


def test_breaker_counts_add_up_and_half_open_never_overflows() -> None:
    config = CircuitBreakerConfig(
        window=CountWindow(size=20),
        minimum_calls=10,
        failure_rate=0.5,
        open_for=0.05,
        half_open_calls=3,
    )
    states: list[BreakerState] = [BreakerState.CLOSED]  # states[e - 1] is epoch e's state

    def listener(old: BreakerState, new: BreakerState, now: float) -> None:
        assert old is states[-1], "listeners must see transitions in order"
        states.append(new)

    breaker = CircuitBreaker(config, listeners=[listener])
    clock = itertools.count()
    guard = threading.Lock()
    admitted_by_epoch: Counter[int] = Counter()
    cancelled_by_epoch: Counter[int] = Counter()
    tallies = {"admitted": 0, "rejected": 0}

    def work(index: int) -> None:
        rng = random.Random(index)
        admitted = rejected = 0
        for _ in range(PER_THREAD):
            now = next(clock) * 0.0001
            ticket = breaker.admit(now)
            if ticket == REJECTED:
                rejected += 1
                continue
            admitted += 1
            with guard:
                admitted_by_epoch[ticket] += 1
            roll = rng.random()
            later = now + 0.0001
            if roll < 0.1:
                with guard:
                    cancelled_by_epoch[ticket] += 1
                breaker.on_cancel(later, ticket)
            elif roll < 0.55:
                breaker.on_failure(later, 0.001, ticket)
            else:
                breaker.on_success(later, 0.001, ticket)
        with guard:
            tallies["admitted"] += admitted
            tallies["rejected"] += rejected

    hammer(work)
    assert tallies["admitted"] + tallies["rejected"] == OPERATIONS
    assert breaker.rejected_total == tallies["rejected"]
    assert len(states) > 10, "the run should cycle through the states many times"
    half_open_epochs = [e for e, s in enumerate(states, start=1) if s is BreakerState.HALF_OPEN]
    assert half_open_epochs
    for epoch in half_open_epochs:
        net = admitted_by_epoch[epoch] - cancelled_by_epoch[epoch]
        assert net <= config.half_open_calls, (epoch, net)
    assert sum(admitted_by_epoch.values()) == tallies["admitted"]


def test_budget_never_grants_beyond_its_tokens() -> None:
    """Phase 1 deposits, phase 2 withdraws: exactly floor(tokens) retries may be granted."""
    config = RetryBudgetConfig(ratio=0.25, min_per_second=5, window=10)
    budget = RetryBudget(config)
    deposited = threading.Barrier(THREADS)
    guard = threading.Lock()
    totals = {"requests": 0, "granted": 0, "denied": 0}

    def work(index: int) -> None:
        half = PER_THREAD // 2
        for _ in range(half):
            budget.on_request(1.0)
        deposited.wait()
        granted = sum(budget.try_withdraw(1.0) for _ in range(PER_THREAD - half))
        with guard:
            totals["requests"] += half
            totals["granted"] += granted
            totals["denied"] += PER_THREAD - half - granted

    hammer(work)
    assert sum(totals.values()) == OPERATIONS
    tokens = config.ratio * totals["requests"] + config.min_per_second * config.window
    assert totals["granted"] == int(tokens)  # more would be an over-grant, fewer a lost deposit
    assert budget.window_counts(1.0) == (totals["requests"], totals["granted"])
    assert budget.denied_total == totals["denied"]
    assert budget.balance(1.0) == tokens - totals["granted"]


def test_bulkhead_permits_never_exceed_the_limit_and_return_to_zero() -> None:
    limit = 5
    bulkhead = Bulkhead(limit)
    guard = threading.Lock()
    held = {"now": 0, "max": 0, "acquired": 0, "rejected": 0}

    def work(index: int) -> None:
        rng = random.Random(index)
        mine = 0
        acquired = rejected = 0
        for _ in range(PER_THREAD):
            if mine and rng.random() < 0.5:
                with guard:
                    held["now"] -= 1
                bulkhead.release()
                mine -= 1
            elif bulkhead.try_acquire():
                acquired += 1
                mine += 1
                with guard:
                    held["now"] += 1
                    held["max"] = max(held["max"], held["now"])
            else:
                rejected += 1
        for _ in range(mine):
            with guard:
                held["now"] -= 1
            bulkhead.release()
        with guard:
            held["acquired"] += acquired
            held["rejected"] += rejected

    hammer(work)
    assert bulkhead.in_use == 0
    assert 0 < held["max"] <= limit
    assert bulkhead.rejected_total == held["rejected"]
    assert held["acquired"] > 0 and held["rejected"] > 0


def test_outlier_detector_loses_no_failure() -> None:
    endpoints = 500
    per_endpoint = OPERATIONS // endpoints  # every endpoint fails exactly this often
    detector = OutlierDetector(
        OutlierDetectionConfig(
            consecutive_failures=per_endpoint,
            base_ejection=1e9,
            max_ejection=1e9,
            max_ejected=1.0,
        )
    )
    names = [f"e{i}" for i in range(endpoints)]

    def work(index: int) -> None:
        for step in range(PER_THREAD):
            name = names[(step + index * 7) % endpoints]
            detector.on_failure(1.0, name, endpoints)
            if step % 97 == 0:
                assert len(detector.ejected(1.0)) <= endpoints

    hammer(work)
    # a single lost increment would leave its endpoint one failure short of ejection
    assert detector.ejections_total == endpoints
    assert detector.ejected(1.0) == frozenset(names)
    assert {detector.ejection_count(n) for n in names} == {1}


def test_throttle_counts_every_request_and_accept() -> None:
    throttle = AdaptiveThrottle(AdaptiveThrottleConfig(k=1.2, window=60))
    guard = threading.Lock()
    totals = {"requests": 0, "accepts": 0, "rejected": 0}

    def work(index: int) -> None:
        rng = random.Random(index)
        requests = accepts = rejected = 0
        for _ in range(PER_THREAD // 2):
            requests += 1
            if throttle.should_reject(5.0, rng):
                rejected += 1
            elif rng.random() < 0.5:
                throttle.on_accept(5.0)
                accepts += 1
        with guard:
            totals["requests"] += requests
            totals["accepts"] += accepts
            totals["rejected"] += rejected

    hammer(work)
    assert throttle.window_counts(5.0) == (totals["requests"], totals["accepts"])
    assert throttle.rejected_total == totals["rejected"] > 0


def test_outlier_share_holds_for_every_concurrent_reader() -> None:
    endpoints = 50
    config = OutlierDetectionConfig(
        consecutive_failures=3, base_ejection=0.002, max_ejection=0.01, max_ejected=0.2
    )
    detector = OutlierDetector(config)
    limit = int(config.max_ejected * endpoints)
    clock = itertools.count()
    names = [f"e{i}" for i in range(endpoints)]
    largest = [0] * THREADS

    def work(index: int) -> None:
        rng = random.Random(index)
        for _ in range(PER_THREAD // 2):
            now = next(clock) * 0.00001
            name = names[rng.randrange(endpoints)]
            if rng.random() < 0.8:
                detector.on_failure(now, name, endpoints)
            else:
                detector.on_success(now, name)
            out = detector.ejected(now)
            largest[index] = max(largest[index], len(out))
            assert len(out) <= limit

    hammer(work)
    assert max(largest) == limit  # the share was reached, and never passed
    assert detector.ejections_total > limit  # ejections ended and new ones began


def test_budget_deposits_are_never_lost_while_the_window_moves() -> None:
    """Lock-free deposits (one ``itertools.count`` per slice) race slice changes and the
    locked reads that call ``next()`` on the same counters: every deposit is still counted."""
    config = RetryBudgetConfig(ratio=0.5, min_per_second=0, window=10)
    budget = RetryBudget(config)
    reads = threading.Barrier(THREADS)

    def work(index: int) -> None:
        reads.wait()
        for i in range(PER_THREAD):
            now = 9.99 * i / PER_THREAD  # crosses all ten slices of the window
            budget.on_request(now)
            if i % 97 == index:  # reads and withdrawals interleave with the deposits
                budget.window_counts(now)
                budget.try_withdraw(now)

    hammer(work)
    requests, retries = budget.window_counts(9.99)
    assert requests == OPERATIONS
    assert retries <= config.ratio * requests
    assert budget.balance(9.99) == config.ratio * requests - retries
