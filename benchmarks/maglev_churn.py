"""What a health change or an ejection costs the hash balancers, and what churn does to calls.

Two measurements, contenders interleaved round by round, the garbage collector collected and
then switched off around every timed section (for all contenders alike):

1. **availability change**: the time of one ``set_unavailable`` (an endpoint goes unavailable,
   then comes back) with 100 endpoints and the default table/ring sizes, for

   - ``maglev``: the current balancer (the table is built for the endpoint set; availability is
     applied at pick time);
   - ``maglev_rebuild``: the baseline, the previous behaviour kept here: the whole table is
     filled again for the available hosts on every change;
   - ``ring_hash`` and ``ring_hash_rebuild``: the same for the ring.

   Median and range (min-max) over ``--changes`` changes, ratio of medians baseline/current.

2. **calls under ejection churn**: 16 threads calling through one ``UpstreamPolicies`` (100
   endpoints, outlier detection ejecting an endpoint after one failure for 10 ms; one endpoint
   in ten fails, so ejections begin and end all the time) for ``--seconds`` seconds each, for
   maglev, the maglev baseline and least-request. Calls per second, median and range over
   ``--repeats`` rounds.

    python benchmarks/maglev_churn.py [--changes 200] [--seconds 2] [--repeats 3]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.drivers.classify import CallFailed
from meshspec_runtime.drivers.sync import call_sync
from meshspec_runtime.policy.balancer import STRATEGIES, Balancer, Maglev, RingHash
from meshspec_runtime.policy.balancer.base import Host
from meshspec_runtime.policy.balancer.maglev import build_table
from meshspec_runtime.policy.config import (
    LoadBalancerConfig,
    OutlierDetectionConfig,
    RetryConfig,
    Strategy,
    UpstreamPolicy,
)
from meshspec_runtime.policy.upstream import UpstreamPolicies

ENDPOINTS = 100
THREADS = 16


class RebuildingMaglev(Maglev):
    """The baseline: the table is filled again for the pool on every pool change."""

    def _rebuild(self, pool: tuple[Host, ...]) -> None:
        self._state = (build_table(pool, self._size), frozenset(pool))


class RebuildingRingHash(RingHash):
    """The baseline: the ring is built again for the pool on every pool change."""

    def _rebuild(self, pool: tuple[Host, ...]) -> None:
        self._state = (self._build(pool), frozenset(pool))


def endpoints(n: int) -> list[Endpoint]:
    return [
        Endpoint(id=f"ep-{i}", address=f"10.0.{i // 250}.{i % 250 + 1}", port=80) for i in range(n)
    ]


@contextmanager
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def summary(values: list[float], digits: int = 3) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def change_times(balancers: dict[str, Balancer], changes: int) -> dict[str, list[float]]:
    """Milliseconds per availability change, contenders interleaved change by change."""
    times: dict[str, list[float]] = {name: [] for name in balancers}
    ids = [f"ep-{i}" for i in range(ENDPOINTS)]
    for i in range(changes):
        # even changes make one endpoint unavailable, odd ones bring it back
        unavailable = frozenset({ids[(i // 2) % ENDPOINTS]}) if i % 2 == 0 else frozenset()
        for name, balancer in balancers.items():
            with no_gc():
                started = time.perf_counter_ns()
                balancer.set_unavailable(unavailable)
                times[name].append((time.perf_counter_ns() - started) / 1e6)
    return times


def attempt(endpoint: Endpoint, timeout: float) -> int:
    if endpoint.port == 81:  # one endpoint in ten fails: it is ejected, then comes back
        raise ConnectionRefusedError("refused")
    return 42


def churning_upstream(strategy: Strategy, balancer: type[Balancer] | None) -> UpstreamPolicies:
    policy = UpstreamPolicy(
        retry=RetryConfig(attempts=2),
        load_balancer=LoadBalancerConfig(strategy=strategy),
        outlier_detection=OutlierDetectionConfig(
            consecutive_failures=1, base_ejection=0.01, max_ejection=0.01, max_ejected=0.5
        ),
    )
    hosts = [
        e.model_copy(update={"port": 81}) if i % 10 == 0 else e
        for i, e in enumerate(endpoints(ENDPOINTS))
    ]
    upstream = UpstreamPolicies(policy, hosts, rng=random.Random(1))
    if balancer is not None:
        upstream.balancer = balancer(policy.load_balancer, hosts, random.Random(1))
    return upstream


def calls_per_second(upstream: UpstreamPolicies, seconds: float) -> float:
    counts = [0] * THREADS
    stop = time.monotonic() + seconds
    start = threading.Barrier(THREADS + 1)

    def worker(index: int) -> None:
        start.wait()
        done = 0
        key = 0
        while time.monotonic() < stop:
            key += 1
            with suppress(CallFailed):
                call_sync(upstream, attempt, key=f"user-{index}-{key % 1000}")
            done += 1
        counts[index] = done

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    with no_gc():
        began = time.monotonic()
        start.wait()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - began
    return sum(counts) / elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--changes", type=int, default=200, help="availability changes timed")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of a churn round")
    parser.add_argument("--repeats", type=int, default=3, help="churn rounds per contender")
    args = parser.parse_args(argv)

    config = LoadBalancerConfig()  # default ring_size and maglev_table_size
    contenders: dict[str, Callable[[], Balancer]] = {
        "maglev": lambda: Maglev(config, endpoints(ENDPOINTS), random.Random(0)),
        "maglev_rebuild": lambda: RebuildingMaglev(config, endpoints(ENDPOINTS), random.Random(0)),
        "ring_hash": lambda: RingHash(config, endpoints(ENDPOINTS), random.Random(0)),
        "ring_hash_rebuild": lambda: RebuildingRingHash(
            config, endpoints(ENDPOINTS), random.Random(0)
        ),
    }
    times = change_times({name: make() for name, make in contenders.items()}, args.changes)
    change = {name: summary(values) for name, values in times.items()}

    churn_contenders: dict[str, Callable[[], UpstreamPolicies]] = {
        "maglev": lambda: churning_upstream(Strategy.MAGLEV, None),
        "maglev_rebuild": lambda: churning_upstream(Strategy.MAGLEV, RebuildingMaglev),
        "least_request": lambda: churning_upstream(Strategy.LEAST_REQUEST, None),
    }
    rates: dict[str, list[float]] = {name: [] for name in churn_contenders}
    for _ in range(args.repeats):
        for name, make_upstream in churn_contenders.items():
            rates[name].append(calls_per_second(make_upstream(), args.seconds))
    churn = {name: summary(values, 0) for name, values in rates.items()}

    def ratio(numerator: dict[str, float], denominator: dict[str, float]) -> float:
        return round(numerator["median"] / denominator["median"], 2)

    report = {
        "python": platform.python_version(),
        "endpoints": ENDPOINTS,
        "maglev_table_size": config.maglev_table_size,
        "ring_size": config.ring_size,
        "availability_change_ms": change,
        "ratio_maglev_rebuild_per_maglev": ratio(change["maglev_rebuild"], change["maglev"]),
        "ratio_ring_hash_rebuild_per_ring_hash": ratio(
            change["ring_hash_rebuild"], change["ring_hash"]
        ),
        "threads": THREADS,
        "churn_calls_per_second": churn,
        "ratio_maglev_per_maglev_rebuild": ratio(churn["maglev"], churn["maglev_rebuild"]),
        "ratio_maglev_per_least_request": ratio(churn["maglev"], churn["least_request"]),
    }
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    assert STRATEGIES[Strategy.MAGLEV] is Maglev  # the balancer measured is the one shipped
    main()
