"""Each balancer's distribution, weights and feedback."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from meshspec_runtime.policy.balancer import (
    STRATEGIES,
    Balancer,
    LeastRequest,
    PeakEwma,
    WeightedRoundRobin,
    balancer_for,
)
from meshspec_runtime.policy.balancer.weighted_round_robin import smooth_schedule
from meshspec_runtime.policy.config import LoadBalancerConfig, Strategy
from runtime_call_kit import endpoints


def make(strategy: Strategy, n: int = 4, seed: int = 3, **options: object) -> Balancer:
    config = LoadBalancerConfig.model_validate({"strategy": strategy, **options})
    return balancer_for(config, endpoints(n), random.Random(seed))


def picks(balancer: Balancer, count: int, now: float = 0.0) -> Counter[str]:
    counts: Counter[str] = Counter()
    for i in range(count):
        host = balancer.pick(now, f"key-{i}")
        assert host is not None
        counts[host.id] += 1
    return counts


def test_every_strategy_is_wired() -> None:
    assert set(STRATEGIES) == set(Strategy)
    for strategy in Strategy:
        assert isinstance(make(strategy), STRATEGIES[strategy])


def test_round_robin_is_exactly_even_and_cyclic() -> None:
    balancer = make(Strategy.ROUND_ROBIN, n=5)
    sequence = [balancer.pick(0.0) for _ in range(10)]
    assert sequence[:5] == sequence[5:]
    assert {h.id for h in sequence if h is not None} == {f"ep-{i}" for i in range(5)}


def test_smooth_weighted_round_robin_matches_nginx() -> None:
    # nginx's documented example: weights {a: 5, b: 1, c: 1} -> a a b a c a a
    assert smooth_schedule([5, 1, 1], 7, [0, 0, 0]) == [0, 0, 1, 0, 2, 0, 0]
    config = LoadBalancerConfig(strategy=Strategy.WEIGHTED_ROUND_ROBIN)
    balancer = WeightedRoundRobin(config, endpoints(3, weights=[5, 1, 1]), random.Random(0))
    ids = [balancer.pick(0.0).id for _ in range(14)]  # type: ignore[union-attr]
    assert ids[:7] == ["ep-0", "ep-0", "ep-1", "ep-0", "ep-2", "ep-0", "ep-0"]
    assert ids[7:] == ids[:7]


def test_weighted_round_robin_without_a_precomputed_period_agrees(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    weights = [7, 3, 2, 1]
    config = LoadBalancerConfig(strategy=Strategy.WEIGHTED_ROUND_ROBIN)
    scheduled = WeightedRoundRobin(config, endpoints(4, weights=weights), random.Random(0))
    monkeypatch.setattr(
        "meshspec_runtime.policy.balancer.weighted_round_robin.MAX_SCHEDULE_WORK", 0
    )
    per_pick = WeightedRoundRobin(config, endpoints(4, weights=weights), random.Random(0))
    assert per_pick._plan[0] is None
    first = [scheduled.pick(0.0).id for _ in range(40)]  # type: ignore[union-attr]
    second = [per_pick.pick(0.0).id for _ in range(40)]  # type: ignore[union-attr]
    assert first == second
    assert Counter(first) == {"ep-0": 7 * 40 // 13 + 1, "ep-1": 9, "ep-2": 6, "ep-3": 3}


@pytest.mark.parametrize("strategy", [Strategy.RANDOM, Strategy.LEAST_REQUEST])
def test_random_draws_follow_weights(strategy: Strategy) -> None:
    config = LoadBalancerConfig(strategy=strategy)
    balancer = balancer_for(config, endpoints(3, weights=[1, 2, 5]), random.Random(11))
    counts = picks(balancer, 16000)
    # least_request with nothing in flight is a weighted draw too (ties keep the first)
    for endpoint_id, share in (("ep-0", 1 / 8), ("ep-1", 2 / 8), ("ep-2", 5 / 8)):
        assert counts[endpoint_id] / 16000 == pytest.approx(share, abs=0.02)


@pytest.mark.parametrize("n", [1, 3, 32, 33, 40])
def test_least_request_p2c_picks_follow_one_draw_per_pick(n: int) -> None:
    """The uniform P2C fast paths (a pair table up to 32 hosts, arithmetic above) make the
    decision a naive two-choice pick makes from the same draw: one draw per pick."""
    balancer = make(Strategy.LEAST_REQUEST, n=n, seed=11)
    twin = random.Random(11)
    pool = balancer.hosts
    busy = random.Random(5)
    for host in pool:  # uneven active counts, so that the comparison decides
        for _ in range(busy.randrange(4)):
            balancer.on_start(host)
    for _ in range(2000):
        both = int(twin.random() * n * n)
        first, second = pool[both % n], pool[both // n]
        expected = second if second.active < first.active else first
        assert balancer.pick(0.0) is expected


def test_least_request_avoids_busy_hosts() -> None:
    balancer = make(Strategy.LEAST_REQUEST, n=3)
    assert isinstance(balancer, LeastRequest)
    busy = balancer.hosts[0]
    for _ in range(10):
        balancer.on_start(busy)
    counts = picks(balancer, 9000)
    # with two draws the busy host wins only when drawn twice: 1/9 of the time
    assert counts["ep-0"] / 9000 == pytest.approx(1 / 9, abs=0.02)
    many = make(Strategy.LEAST_REQUEST, n=3, choices=8)
    for _ in range(10):
        many.on_start(many.hosts[0])
    assert picks(many, 3000)["ep-0"] < 30


def test_peak_ewma_prefers_fast_hosts_and_forgives_with_time() -> None:
    balancer = make(Strategy.PEAK_EWMA, n=2, ewma_decay=1.0)
    assert isinstance(balancer, PeakEwma)
    slow, fast = balancer.hosts
    for host, latency in ((slow, 0.5), (fast, 0.01)):
        balancer.on_start(host)
        balancer.on_finish(host, latency, now=0.0)
    assert slow.ewma == 0.5  # peak: a higher observation is taken at once
    counts = picks(balancer, 2000, now=0.0)
    assert counts["ep-1"] > 1950  # two distinct candidates: the fast one nearly always wins
    # long after, the fast host has fresh measurements, the slow one's cost has decayed
    # towards zero: it is tried again
    balancer.on_start(fast)
    balancer.on_finish(fast, 0.01, now=30.0)
    later = picks(balancer, 200, now=30.0)
    assert later["ep-0"] > 150


def test_peak_ewma_draws_two_distinct_uniform_candidates() -> None:
    """Three hosts of distinct costs: the cheapest wins whenever it is drawn (2 pairs of 3),
    the middle one only against the dearest (1 of 3), the dearest never (its pair would have
    to be itself twice)."""
    balancer = make(Strategy.PEAK_EWMA, n=3, ewma_decay=1e9)  # costs stay put while picking
    for host, latency in zip(balancer.hosts, (0.01, 0.02, 0.03), strict=True):
        balancer.on_start(host)
        balancer.on_finish(host, latency, now=0.0)
    counts = picks(balancer, 9000)
    assert counts["ep-2"] == 0
    assert counts["ep-0"] / 9000 == pytest.approx(2 / 3, abs=0.02)
    assert counts["ep-1"] / 9000 == pytest.approx(1 / 3, abs=0.02)


def test_peak_ewma_decays_towards_lower_observations() -> None:
    balancer = make(Strategy.PEAK_EWMA, n=2, ewma_decay=2.0)
    host = balancer.hosts[0]
    for now in (0.0, 2.0):
        balancer.on_start(host)
        balancer.on_finish(host, 1.0 if now == 0.0 else 0.0, now)
    assert host.ewma == pytest.approx(1.0 * 2.718281828459045**-1, rel=1e-6)


@pytest.mark.parametrize("strategy", list(Strategy))
def test_feedback_hooks_track_active_requests(strategy: Strategy) -> None:
    balancer = make(strategy)
    host = balancer.pick(0.0, "k")
    assert host is not None
    balancer.on_start(host)
    balancer.on_start(host)
    assert host.active == 2
    balancer.on_finish(host, 0.01, 1.0)
    balancer.on_cancel(host)
    assert host.active == 0


def test_survivors_keep_their_state_across_endpoint_updates() -> None:
    balancer = make(Strategy.LEAST_REQUEST, n=3)
    survivor = balancer.hosts[1]
    for _ in range(4):
        balancer.on_start(survivor)
    balancer.set_endpoints(endpoints(5)[1:])
    assert balancer.host("ep-1") is survivor and survivor.active == 4
    assert balancer.host("ep-0") is None
    assert [h.id for h in balancer.pool] == ["ep-1", "ep-2", "ep-3", "ep-4"]


def test_duplicate_endpoint_ids_are_refused() -> None:
    twice = endpoints(2) + endpoints(1)
    with pytest.raises(ValueError, match="duplicate endpoint id 'ep-0'"):
        balancer_for(LoadBalancerConfig(), twice, random.Random(0))


def test_an_empty_endpoint_set_picks_nothing() -> None:
    for strategy in Strategy:
        balancer = balancer_for(LoadBalancerConfig(strategy=strategy), [], random.Random(0))
        assert balancer.pick(0.0, "k") is None
