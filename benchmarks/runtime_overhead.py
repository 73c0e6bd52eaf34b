"""Cost per successful call of the meshspec runtime's full call path, next to a bare call and
the resilience libraries a service would otherwise use.

Measured in one run, each candidate wrapping the same trivial function:

- ``bare``: the function called directly;
- ``meshspec``: ``call_sync`` through one ``UpstreamPolicies`` with a balancer (least request,
  P2C, 3 endpoints), circuit breaker, retry budget and the call state machine (metrics off);
- ``meshspec_metrics``: the same with metrics on: each call appended to the edge's call log,
  which a background thread folds every second, as under ``Mesh.open(metrics=registry)``
  (the folding thread's CPU time is not the benchmarking thread's: ``--wall`` counts it);
- ``pybreaker``: ``CircuitBreaker.call``;
- ``tenacity``: ``retry(stop=stop_after_attempt(3))``;
- ``purgatory``: its sync breaker, from ``SyncCircuitBreakerFactory``.

Each figure is the median over ``--repeats`` rounds of the mean over ``--calls`` calls, rounds
interleaved across candidates so that machine noise hits them alike; ratios are medians of the
per-round ratios. Time is the CPU time of
the benchmarking thread (``time.thread_time_ns``), so that other processes on a busy machine
do not count; ``--wall`` measures elapsed time instead. Prints one JSON object.

    python benchmarks/runtime_overhead.py [--calls 10000] [--repeats 15] [--wall]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable

import pybreaker
import tenacity
from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.drivers.sync import call_sync
from meshspec_runtime.observe.calls import CallLog, PeriodicFold
from meshspec_runtime.policy.config import (
    CircuitBreakerConfig,
    RetryBudgetConfig,
    RetryConfig,
    UpstreamPolicy,
)
from meshspec_runtime.policy.upstream import UpstreamPolicies
from purgatory import SyncCircuitBreakerFactory


def work() -> int:
    return 42


def candidates() -> dict[str, Callable[[], object]]:
    policy = UpstreamPolicy(
        circuit_breaker=CircuitBreakerConfig(),
        retry=RetryConfig(budget=RetryBudgetConfig()),
    )
    endpoints = [Endpoint(id=f"e{i}", address=f"10.0.0.{i + 1}", port=80) for i in range(3)]
    upstream = UpstreamPolicies(policy, endpoints, rng=random.Random(7))
    metered = UpstreamPolicies(policy, endpoints, rng=random.Random(7))
    log = metered.call_log = CallLog(metered.failure_on, metered.retry_on)
    PeriodicFold(lambda: [log]).start()  # a daemon thread, gone with the process

    def attempt(endpoint: Endpoint, timeout: float) -> int:  # ``work`` with the driver's signature
        return 42

    breaker = pybreaker.CircuitBreaker()
    retrying = tenacity.retry(stop=tenacity.stop_after_attempt(3))(work)
    purgatory_breaker = SyncCircuitBreakerFactory().get_breaker("bench")

    def purgatory_call() -> int:
        with purgatory_breaker:
            return work()

    return {
        "bare": work,
        "meshspec": lambda: call_sync(upstream, attempt),
        "meshspec_metrics": lambda: call_sync(metered, attempt),
        "pybreaker": lambda: breaker.call(work),
        "tenacity": retrying,
        "purgatory": purgatory_call,
    }


def ns_per_call(fn: Callable[[], object], calls: int, clock: Callable[[], int]) -> float:
    loop = range(calls)
    started = clock()
    for _ in loop:
        fn()
    return (clock() - started) / calls


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=10000, help="calls per round")
    parser.add_argument("--repeats", type=int, default=15, help="rounds per candidate")
    parser.add_argument("--wall", action="store_true", help="elapsed time, not CPU time")
    args = parser.parse_args(argv)
    clock = time.perf_counter_ns if args.wall else time.thread_time_ns
    subjects = candidates()
    for fn in subjects.values():  # warm up every code path (and fill the breaker's window)
        ns_per_call(fn, max(args.calls // 5, 500), clock)
    rounds: dict[str, list[float]] = {name: [] for name in subjects}
    for _ in range(args.repeats):
        for name, fn in subjects.items():
            rounds[name].append(ns_per_call(fn, args.calls, clock))
    medians = {name: statistics.median(values) for name, values in rounds.items()}

    def ratio(numerator: str, denominator: str) -> float:
        """Median of the per-round ratios: rounds run back to back, so a change in machine
        load between rounds cancels out."""
        pairs = zip(rounds[numerator], rounds[denominator], strict=True)
        return statistics.median(n / d for n, d in pairs)

    report = {
        "unit": "ns per successful call (median of rounds)",
        "clock": "wall" if args.wall else "thread CPU time",
        "python": platform.python_version(),
        "calls_per_round": args.calls,
        "rounds": args.repeats,
        **{name: round(value) for name, value in medians.items()},
        "meshspec_over_bare_ns": round(medians["meshspec"] - medians["bare"]),
        "ratio_meshspec_per_pybreaker": round(ratio("meshspec", "pybreaker"), 3),
        "ratio_tenacity_per_meshspec": round(ratio("tenacity", "meshspec"), 2),
        "ratio_metrics_on_per_off": round(ratio("meshspec_metrics", "meshspec"), 3),
    }
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
