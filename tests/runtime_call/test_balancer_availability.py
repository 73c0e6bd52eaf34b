"""Unavailable endpoints are skipped, panic mode, and retries avoid the host that failed."""

from __future__ import annotations

import random

import pytest
from meshspec_runtime.policy.balancer import Balancer, balancer_for
from meshspec_runtime.policy.config import LoadBalancerConfig, Strategy
from runtime_call_kit import endpoints

ALL = list(Strategy)


def make(strategy: Strategy, n: int, panic: float = 0.5) -> Balancer:
    config = LoadBalancerConfig(
        strategy=strategy, panic_threshold=panic, ring_size=256, maglev_table_size=251
    )
    return balancer_for(config, endpoints(n), random.Random(5))


def picked_ids(balancer: Balancer, count: int = 600) -> set[str]:
    found = set()
    for i in range(count):
        host = balancer.pick(float(i), f"user-{i}")
        assert host is not None
        found.add(host.id)
    return found


@pytest.mark.parametrize("strategy", ALL)
def test_unavailable_endpoints_are_skipped(strategy: Strategy) -> None:
    balancer = make(strategy, 4)
    balancer.set_unavailable(frozenset({"ep-1"}))
    assert not balancer.panicking
    assert picked_ids(balancer) == {"ep-0", "ep-2", "ep-3"}
    balancer.set_unavailable(frozenset())
    assert picked_ids(balancer) == {"ep-0", "ep-1", "ep-2", "ep-3"}


@pytest.mark.parametrize("strategy", ALL)
def test_panic_mode_balances_over_everyone(strategy: Strategy) -> None:
    balancer = make(strategy, 4, panic=0.5)
    balancer.set_unavailable(frozenset({"ep-0", "ep-1", "ep-2"}))  # 25% available < 50%
    assert balancer.panicking
    assert picked_ids(balancer) == {"ep-0", "ep-1", "ep-2", "ep-3"}
    balancer.set_unavailable(frozenset({"ep-0", "ep-1"}))  # 50%: not below the threshold
    assert not balancer.panicking
    assert picked_ids(balancer) == {"ep-2", "ep-3"}


@pytest.mark.parametrize("strategy", ALL)
def test_without_panic_nothing_available_means_no_pick(strategy: Strategy) -> None:
    balancer = make(strategy, 2, panic=0.0)
    balancer.set_unavailable(frozenset({"ep-0", "ep-1"}))
    assert not balancer.panicking
    assert balancer.pick(0.0, "k") is None


@pytest.mark.parametrize("strategy", ALL)
def test_a_retry_avoids_the_host_that_failed(strategy: Strategy) -> None:
    balancer = make(strategy, 3)
    for i in range(300):
        first = balancer.pick(float(i), f"user-{i}")
        assert first is not None
        again = balancer.pick(float(i), f"user-{i}", avoid=first)
        assert again is not None and again is not first


@pytest.mark.parametrize("strategy", ALL)
def test_avoid_is_ignored_when_only_one_host_is_left(strategy: Strategy) -> None:
    balancer = make(strategy, 1)
    only = balancer.pick(0.0, "k")
    assert only is not None
    assert balancer.pick(0.0, "k", avoid=only) is only
