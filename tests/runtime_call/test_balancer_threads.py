"""Lock-free picks stay correct while another thread changes the endpoint set."""

from __future__ import annotations

import random
import sys
import threading

import pytest
from meshspec_runtime.policy.balancer import balancer_for
from meshspec_runtime.policy.config import LoadBalancerConfig, Strategy
from runtime_call_kit import endpoints


@pytest.mark.parametrize("strategy", list(Strategy))
def test_picks_race_endpoint_updates_safely(strategy: Strategy) -> None:
    config = LoadBalancerConfig(strategy=strategy, ring_size=64, maglev_table_size=101)
    everyone = endpoints(6, weights=[1, 2, 1, 3, 1, 1])
    balancer = balancer_for(config, everyone, random.Random(0))
    known = {e.id for e in everyone}
    errors: list[BaseException] = []
    seen: dict[int, object] = {}
    stop = threading.Event()

    def picker(seed: int) -> None:
        try:
            i = 0
            while not stop.is_set() or i < 2000:  # pick for as long as the changes go on
                i += 1
                host = balancer.pick(float(i), f"k{i % 50}")
                if host is None:
                    continue
                assert host.id in known
                seen[id(host)] = host
                balancer.on_start(host)
                balancer.on_finish(host, 0.001 * (seed + 1), float(i))
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    def churn() -> None:
        rng = random.Random(1)
        for rounds in range(1, 302):  # the last round leaves endpoints
            size = 0 if rounds % 10 == 0 else rng.randint(1, 6)  # now and then, nothing
            balancer.set_endpoints(rng.sample(everyone, size))
            balancer.set_unavailable(frozenset(rng.sample(sorted(known), rng.randint(0, 3))))
        stop.set()

    pickers = [threading.Thread(target=picker, args=(seed,)) for seed in range(4)]
    changer = threading.Thread(target=churn)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, to make races likely
    try:
        for thread in pickers:
            thread.start()
        changer.start()
        changer.join()
        for thread in pickers:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert seen  # picks happened
    assert all(host.active == 0 for host in seen.values())  # type: ignore[attr-defined]
