"""Consistent hashing: stable across processes, minimal movement when endpoints change."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest
from meshspec_runtime.policy.balancer import Balancer, Maglev, RingHash, balancer_for
from meshspec_runtime.policy.balancer.hashing import hash64
from meshspec_runtime.policy.config import LoadBalancerConfig, Strategy
from meshspec_runtime.policy.limits import is_prime
from runtime_call_kit import endpoints

HASHED = [Strategy.RING_HASH, Strategy.MAGLEV]
KEYS = [f"user-{i}" for i in range(4000)]


def make(strategy: Strategy, n: int, weights: list[int] | None = None) -> Balancer:
    config = LoadBalancerConfig(strategy=strategy, ring_size=2048, maglev_table_size=4099)
    return balancer_for(config, endpoints(n, weights), random.Random(0))


def mapping(balancer: Balancer) -> dict[str, str]:
    result = {}
    for key in KEYS:
        host = balancer.pick(0.0, key)
        assert host is not None
        result[key] = host.id
    return result


def test_hash64_is_fixed() -> None:
    # BLAKE2b-64 of "user-1": a constant, whatever PYTHONHASHSEED says
    assert hash64("user-1") == hash64("user-1")
    assert hash64("user-1") != hash64("user-2")
    assert 0 <= hash64("x") < 2**64


@pytest.mark.parametrize("strategy", HASHED)
def test_same_key_same_endpoint_across_processes(strategy: Strategy) -> None:
    here = mapping(make(strategy, 5))
    program = (
        "import random, json\n"
        "from meshspec_runtime.policy.balancer import balancer_for\n"
        "from meshspec_runtime.policy.config import LoadBalancerConfig\n"
        "from meshspec_runtime.bundle import Endpoint\n"
        f"config = LoadBalancerConfig(strategy={strategy.value!r}, ring_size=2048,"
        " maglev_table_size=4099)\n"
        "eps = [Endpoint(id=f'ep-{i}', address=f'10.0.0.{i + 1}', port=8080) for i in range(5)]\n"
        "b = balancer_for(config, eps, random.Random(99))\n"
        "print(json.dumps({f'user-{i}': b.pick(0.0, f'user-{i}').id for i in range(4000)}))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env=env, check=True
    )
    import json

    assert json.loads(out.stdout) == here


@pytest.mark.parametrize("strategy", HASHED)
def test_keys_spread_over_endpoints_by_weight(strategy: Strategy) -> None:
    counts: dict[str, int] = {}
    for endpoint_id in mapping(make(strategy, 4, weights=[1, 1, 1, 3])).values():
        counts[endpoint_id] = counts.get(endpoint_id, 0) + 1
    assert counts["ep-3"] / len(KEYS) == pytest.approx(0.5, abs=0.08)
    for light in ("ep-0", "ep-1", "ep-2"):
        assert counts[light] / len(KEYS) == pytest.approx(1 / 6, abs=0.06)


@pytest.mark.parametrize("strategy", HASHED)
def test_adding_an_endpoint_moves_only_keys_to_it(strategy: Strategy) -> None:
    balancer = make(strategy, 5)
    before = mapping(balancer)
    balancer.set_endpoints(endpoints(6))
    after = mapping(balancer)
    moved = [k for k in KEYS if before[k] != after[k]]
    to_new = [k for k in moved if after[k] == "ep-5"]
    share = len(moved) / len(KEYS)
    assert share == pytest.approx(1 / 6, abs=0.06)
    if strategy is Strategy.RING_HASH:
        assert to_new == moved  # exact for a ring
    else:
        assert len(to_new) >= 0.95 * len(moved)  # Maglev: near-minimal disruption


@pytest.mark.parametrize("strategy", HASHED)
def test_removing_an_endpoint_moves_only_its_keys(strategy: Strategy) -> None:
    balancer = make(strategy, 6)
    before = mapping(balancer)
    balancer.set_endpoints(endpoints(6)[:2] + endpoints(6)[3:])  # ep-2 leaves
    after = mapping(balancer)
    kept = [k for k in KEYS if before[k] != "ep-2"]
    stayed = sum(before[k] == after[k] for k in kept)
    assert all(after[k] != "ep-2" for k in KEYS)
    if strategy is Strategy.RING_HASH:
        assert stayed == len(kept)
    else:
        assert stayed >= 0.95 * len(kept)


def test_maglev_needs_a_prime_table() -> None:
    assert [n for n in range(2, 30) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    # the model refuses it when a bundle is loaded ...
    with pytest.raises(ValueError, match="maglev_table_size must be a prime, got 1000"):
        LoadBalancerConfig(strategy=Strategy.MAGLEV, maglev_table_size=1000)
    # ... and the balancer still does for a config built without validation
    config = LoadBalancerConfig.model_construct(strategy=Strategy.MAGLEV, maglev_table_size=1000)
    with pytest.raises(ValueError, match="maglev_table_size must be prime, got 1000"):
        balancer_for(config, endpoints(3), random.Random(0))


def test_calls_without_a_key_are_spread() -> None:
    for strategy in HASHED:
        balancer = make(strategy, 4)
        seen = {balancer.pick(0.0).id for _ in range(400)}  # type: ignore[union-attr]
        assert seen == {"ep-0", "ep-1", "ep-2", "ep-3"}


def builds(balancer: Balancer) -> tuple[int, object]:
    """How many times the balancer built its lookup structure, and the one it uses now."""
    if isinstance(balancer, Maglev):
        return balancer.table_builds, balancer.table
    assert isinstance(balancer, RingHash)
    return balancer.ring_builds, balancer.ring


def same_objects(now: object, before: object) -> bool:
    """``now`` is ``before``, or a tuple of the same objects (the build compiled by mypyc
    gives a fresh tuple each time it returns one it holds unboxed)."""
    if isinstance(now, tuple) and isinstance(before, tuple):
        return len(now) == len(before) and all(a is b for a, b in zip(now, before, strict=True))
    return now is before


@pytest.mark.parametrize("strategy", HASHED)
def test_an_availability_change_rebuilds_nothing(strategy: Strategy) -> None:
    balancer = make(strategy, 10)
    count, structure = builds(balancer)
    assert count == 1
    before = mapping(balancer)
    for unavailable in ({"ep-3"}, {"ep-3", "ep-7"}, set(), {"ep-0"}):
        balancer.set_unavailable(frozenset(unavailable))
        assert builds(balancer) == (1, structure)
        assert same_objects(builds(balancer)[1], structure)
        after = mapping(balancer)
        # a key whose host is available keeps it; the others leave the unavailable hosts
        assert all(after[k] == before[k] for k in KEYS if before[k] not in unavailable)
        assert not any(after[k] in unavailable for k in KEYS)
    balancer.set_endpoints(endpoints(11))  # a new endpoint set: one build
    assert builds(balancer)[0] == 2
    assert builds(balancer)[1] is not structure


@pytest.mark.parametrize("strategy", HASHED)
def test_keys_of_an_unavailable_host_spread_over_the_others(strategy: Strategy) -> None:
    balancer = make(strategy, 5)
    before = mapping(balancer)
    balancer.set_unavailable(frozenset({"ep-2"}))
    after = mapping(balancer)
    moved = [after[k] for k in KEYS if before[k] == "ep-2"]
    assert moved and set(moved) == {"ep-0", "ep-1", "ep-3", "ep-4"}
    for host in ("ep-0", "ep-1", "ep-3", "ep-4"):
        assert moved.count(host) / len(moved) == pytest.approx(1 / 4, abs=0.15)


@pytest.mark.parametrize("strategy", HASHED)
def test_a_retry_avoids_the_failed_host_and_unavailable_ones(strategy: Strategy) -> None:
    balancer = make(strategy, 4)
    balancer.set_unavailable(frozenset({"ep-1"}))
    for key in KEYS[:500]:
        first = balancer.pick(0.0, key)
        assert first is not None and first.id != "ep-1"
        other = balancer.pick(0.0, key, avoid=first)
        assert other is not None and other.id not in ("ep-1", first.id)


def test_maglev_finds_an_available_host_that_owns_no_slot() -> None:
    # in a 7-slot table a host 65535 times lighter than the other owns no slot at all
    config = LoadBalancerConfig(strategy=Strategy.MAGLEV, maglev_table_size=7, panic_threshold=0)
    balancer = balancer_for(config, endpoints(2, [65535, 1]), random.Random(0))
    assert isinstance(balancer, Maglev)
    assert {h.id for h in balancer.table} == {"ep-0"}
    balancer.set_unavailable(frozenset({"ep-0"}))
    assert {balancer.pick(0.0, key).id for key in KEYS[:50]} == {"ep-1"}  # type: ignore[union-attr]
