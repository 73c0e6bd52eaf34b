"""Cost of the meshspec runtime's call paths next to a bare call and the resilience libraries a
service would otherwise use, and the cost of building one upstream's policies.

Every contender wraps the same trivial function (a successful answer), so the figures are the
libraries' own overhead. Four groups, all measured in the same run:

``sync`` (ns per successful call)
    ``bare``: the function called directly; ``meshspec_full``: ``call_sync`` through
    ``UpstreamPolicies`` built from the policy ``examples/shop.yaml`` gives the gateway's
    ``catalog`` edge (every policy the example enables: peak-EWMA balancer over 3 endpoints,
    rate breaker, retries with a budget, adaptive throttle, outlier detection) plus the
    ``concurrency_limit: 200`` of its ``checkout -> payments`` edge (bulkhead), metrics off;
    ``meshspec_subset``: least request, breaker and retry budget only (the defaults of each);
    ``meshspec_metrics``: the subset with metrics on, each call appended to the edge's call
    log that a background thread folds every second, as under ``Mesh.open(metrics=registry)``
    (the folding thread's CPU time is not the benchmarking thread's: ``--wall`` counts it);
    ``pybreaker`` (``CircuitBreaker.call``), ``circuitbreaker`` (its decorator), ``purgatory``
    (its sync breaker as a context manager), ``tenacity`` (``retry``, 3 attempts).
``open`` (ns per call refused by an open breaker, the exception caught)
    the full policy's breaker, pybreaker, circuitbreaker and purgatory, each tripped by
    failures reported before the rounds (open for an hour, so that none half-opens during the run).
``async`` (ns per successful call, awaited in a running event loop)
    ``bare_async``: the coroutine awaited directly; ``meshspec_async``: ``call_async`` with the
    full policy (the per-try timeout of 500 ms armed around every attempt); ``aiobreaker``
    (``call_async``), ``purgatory_async``, ``circuitbreaker_async`` (decorator),
    ``tenacity_async`` (``retry`` on a coroutine function, 3 attempts).
``build`` (per ``UpstreamPolicies``, 3 endpoints, for a policy already built once)
    ``build_full`` and ``build_subset``: CPU time; bytes retained (``tracemalloc``) are
    measured once, after the rounds.

Each round runs every contender once, in a shuffled order (the same seed every run), after a
full garbage collection, with the collector enabled for all (the same conditions for every
contender). Time is the CPU time of the benchmarking thread (``time.thread_time_ns``), so that
other processes on a busy machine do not count; ``--wall`` measures elapsed time instead. A
figure is the median over the rounds (and its range, min-max); a ratio is the median of the
per-round ratios (rounds run back to back, so a change of machine load cancels out), with
its range.

    python benchmarks/runtime_overhead.py [--calls 5000] [--repeats 11] [--wall] [--json]

The runtime measured is the one imported, and the first line says which: the editable install
of the test command is plain Python; ``pip install ./runtime`` compiles the request path with
mypyc (``runtime/setup.py``). To measure the compiled build from a checkout:

    pip wheel --no-deps -w /tmp/wheel ./runtime
    unzip -q -o /tmp/wheel/meshspec_runtime-*.whl -d /tmp/compiled
    PYTHONPATH=/tmp/compiled python benchmarks/runtime_overhead.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import platform
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiobreaker  # type: ignore[import-untyped]
import circuitbreaker  # type: ignore[import-untyped]
import pybreaker
import tenacity
from meshspec_runtime import is_compiled
from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.drivers import CallFailed, call_async, call_sync
from meshspec_runtime.observe.calls import CallLog, PeriodicFold
from meshspec_runtime.policy.config import (
    CircuitBreakerConfig,
    RetryBudgetConfig,
    RetryConfig,
    UpstreamPolicy,
)
from meshspec_runtime.policy.upstream import UpstreamPolicies
from purgatory import AsyncCircuitBreakerFactory, SyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from meshspec.spec.loader import load_spec
from meshspec.spec.resolve import edge_policy

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "shop.yaml"
RUNTIME_BUILD = "compiled by mypyc" if is_compiled() else "plain Python"
"""Which build is measured: ``pip install ./runtime`` compiles, an editable install does not."""
OPEN_FOR = 3600.0
"""Seconds every tripped breaker stays open: longer than any run."""

Clock = Callable[[], int]
Runner = Callable[[int, Clock], float]
"""``runner(n, clock)``: perform ``n`` operations, return the clock's ns per operation."""


def work() -> int:
    return 42


async def work_async() -> int:
    return 42


def attempt(endpoint: Endpoint, timeout: float) -> int:  # ``work`` with the driver's signature
    return 42


async def attempt_async(endpoint: Endpoint, timeout: float) -> int:
    return 42


def refused(endpoint: Endpoint | None = None, timeout: float = 0.0) -> int:
    raise ConnectionRefusedError


def full_policy() -> UpstreamPolicy:
    """Every policy ``examples/shop.yaml`` enables, on one edge (see the module docstring)."""
    spec = load_spec(EXAMPLE)
    bulkhead = edge_policy(spec, "checkout", "payments").concurrency_limit
    policy = edge_policy(spec, "gateway", "catalog").model_copy(
        update={"concurrency_limit": bulkhead}
    )
    enabled = (
        policy.circuit_breaker,
        policy.retry.budget,
        policy.retry.per_try_timeout,
        policy.adaptive_throttle,
        policy.outlier_detection,
        policy.concurrency_limit,
    )
    assert None not in enabled and policy.load_balancer.strategy == "peak_ewma", policy
    return policy


SUBSET = UpstreamPolicy(
    circuit_breaker=CircuitBreakerConfig(), retry=RetryConfig(budget=RetryBudgetConfig())
)
ENDPOINTS = [Endpoint(id=f"e{i}", address=f"10.0.0.{i + 1}", port=80) for i in range(3)]


def sync_runner(fn: Callable[[], object]) -> Runner:
    def run(calls: int, clock: Clock) -> float:
        loop = range(calls)
        started = clock()
        for _ in loop:
            fn()
        return (clock() - started) / calls

    return run


def refused_runner(fn: Callable[[], object], refusal: type[BaseException]) -> Runner:
    def run(calls: int, clock: Clock) -> float:
        loop = range(calls)
        refusals = 0
        started = clock()
        for _ in loop:
            try:
                fn()
            except refusal:
                refusals += 1
        elapsed = clock() - started
        assert refusals == calls, f"{calls - refusals} calls were not refused"
        return elapsed / calls

    return run


def async_runner(loop: asyncio.AbstractEventLoop, afn: Callable[[], Awaitable[object]]) -> Runner:
    """Times ``n`` awaits inside one running task (the loop is started once per round)."""

    async def many(calls: int, clock: Clock) -> float:
        loop_range = range(calls)
        started = clock()
        for _ in loop_range:
            await afn()
        return (clock() - started) / calls

    def run(calls: int, clock: Clock) -> float:
        return loop.run_until_complete(many(calls, clock))

    return run


def sync_group() -> dict[str, Runner]:
    full = UpstreamPolicies(full_policy(), ENDPOINTS, rng=random.Random(7))
    subset = UpstreamPolicies(SUBSET, ENDPOINTS, rng=random.Random(7))
    metered = UpstreamPolicies(SUBSET, ENDPOINTS, rng=random.Random(7))
    log = metered.call_log = CallLog(metered.failure_on, metered.retry_on)
    PeriodicFold(lambda: [log]).start()  # a daemon thread, gone with the process
    pybreaker_breaker = pybreaker.CircuitBreaker()
    decorated = circuitbreaker.CircuitBreaker()(work)
    purgatory_breaker = SyncCircuitBreakerFactory().get_breaker("bench")

    def purgatory_call() -> int:
        with purgatory_breaker:
            return work()

    return {
        "bare": sync_runner(work),
        "meshspec_full": sync_runner(lambda: call_sync(full, attempt)),
        "meshspec_subset": sync_runner(lambda: call_sync(subset, attempt)),
        "meshspec_metrics": sync_runner(lambda: call_sync(metered, attempt)),
        "pybreaker": sync_runner(lambda: pybreaker_breaker.call(work)),
        "circuitbreaker": sync_runner(decorated),
        "purgatory": sync_runner(purgatory_call),
        "tenacity": sync_runner(tenacity.retry(stop=tenacity.stop_after_attempt(3))(work)),
    }


def open_group() -> dict[str, Runner]:
    policy = full_policy()
    assert policy.circuit_breaker is not None
    tripped = UpstreamPolicies(
        policy.model_copy(
            update={
                "circuit_breaker": policy.circuit_breaker.model_copy(update={"open_for": OPEN_FOR})
            }
        ),
        ENDPOINTS,
        rng=random.Random(7),
    )
    breaker = tripped.breaker
    assert breaker is not None
    # failures reported straight to the breaker: through calls, the adaptive throttle would
    # refuse most attempts of a failing upstream before the breaker saw them
    for _ in range(policy.circuit_breaker.minimum_calls):
        breaker.on_failure(time.monotonic(), 0.001)
    assert breaker.state(time.monotonic()) == "open"

    pybreaker_breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=OPEN_FOR)
    decorated = circuitbreaker.CircuitBreaker(failure_threshold=5, recovery_timeout=OPEN_FOR)(
        refused
    )
    purgatory_breaker = SyncCircuitBreakerFactory(
        default_threshold=5, default_ttl=OPEN_FOR
    ).get_breaker("bench-open")

    def purgatory_call() -> int:
        with purgatory_breaker:
            return refused()

    for _ in range(5):
        for trip in (lambda: pybreaker_breaker.call(refused), decorated, purgatory_call):
            with contextlib.suppress(ConnectionRefusedError, pybreaker.CircuitBreakerError):
                trip()
    assert pybreaker_breaker.current_state == "open"
    return {
        "meshspec_open": refused_runner(lambda: call_sync(tripped, attempt), CallFailed),
        "pybreaker_open": refused_runner(
            lambda: pybreaker_breaker.call(work), pybreaker.CircuitBreakerError
        ),
        "circuitbreaker_open": refused_runner(decorated, circuitbreaker.CircuitBreakerError),
        "purgatory_open": refused_runner(purgatory_call, OpenedState),
    }


def async_group(loop: asyncio.AbstractEventLoop) -> dict[str, Runner]:
    full = UpstreamPolicies(full_policy(), ENDPOINTS, rng=random.Random(7))
    aio_breaker = aiobreaker.CircuitBreaker()
    decorated = circuitbreaker.CircuitBreaker()(work_async)
    purgatory_breaker = loop.run_until_complete(AsyncCircuitBreakerFactory().get_breaker("bench"))

    async def purgatory_call() -> int:
        async with purgatory_breaker:
            return await work_async()

    return {
        "bare_async": async_runner(loop, work_async),
        "meshspec_async": async_runner(loop, lambda: call_async(full, attempt_async)),
        "aiobreaker": async_runner(loop, lambda: aio_breaker.call_async(work_async)),
        "purgatory_async": async_runner(loop, purgatory_call),
        "circuitbreaker_async": async_runner(loop, decorated),
        "tenacity_async": async_runner(
            loop, tenacity.retry(stop=tenacity.stop_after_attempt(3))(work_async)
        ),
    }


def build_runner(policy: UpstreamPolicy) -> Runner:
    UpstreamPolicies(policy, ENDPOINTS, rng=random.Random(7))  # built once before

    def run(calls: int, clock: Clock) -> float:
        builds = max(calls // 50, 20)
        rng = random.Random(7)
        kept = []
        started = clock()
        for _ in range(builds):
            kept.append(UpstreamPolicies(policy, ENDPOINTS, rng=rng))
        return (clock() - started) / builds

    return run


def build_bytes(policy: UpstreamPolicy, builds: int = 200) -> float:
    """Bytes each ``UpstreamPolicies`` keeps allocated (``tracemalloc``), built ``builds``
    times after a first build."""
    rng = random.Random(7)
    UpstreamPolicies(policy, ENDPOINTS, rng=rng)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [UpstreamPolicies(policy, ENDPOINTS, rng=rng) for _ in range(builds)]
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(kept) == builds
    return (after - before) / builds


RATIOS: list[tuple[str, str, str]] = [
    # (name, numerator, denominator)
    ("full_per_pybreaker", "meshspec_full", "pybreaker"),
    ("subset_per_pybreaker", "meshspec_subset", "pybreaker"),
    ("full_per_circuitbreaker", "meshspec_full", "circuitbreaker"),
    ("full_per_purgatory", "meshspec_full", "purgatory"),
    ("tenacity_per_full", "tenacity", "meshspec_full"),
    ("metrics_on_per_off", "meshspec_metrics", "meshspec_subset"),
    ("open_per_pybreaker_open", "meshspec_open", "pybreaker_open"),
    ("open_per_circuitbreaker_open", "meshspec_open", "circuitbreaker_open"),
    ("open_per_purgatory_open", "meshspec_open", "purgatory_open"),
    ("async_per_aiobreaker", "meshspec_async", "aiobreaker"),
    ("async_per_purgatory_async", "meshspec_async", "purgatory_async"),
    ("async_per_circuitbreaker_async", "meshspec_async", "circuitbreaker_async"),
    ("tenacity_async_per_async", "tenacity_async", "meshspec_async"),
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=5000, help="calls per round")
    parser.add_argument("--repeats", type=int, default=11, help="rounds per contender")
    parser.add_argument("--wall", action="store_true", help="elapsed time, not CPU time")
    parser.add_argument("--json", action="store_true", help="one JSON object, no table")
    parser.add_argument(
        "--only", help="comma-separated contenders to measure (default: all), for quick looks"
    )
    args = parser.parse_args(argv)
    clock: Clock = time.perf_counter_ns if args.wall else time.thread_time_ns
    loop = asyncio.new_event_loop()
    full, subset = full_policy(), SUBSET
    subjects: dict[str, Runner] = {
        **sync_group(),
        **open_group(),
        **async_group(loop),
        "build_full": build_runner(full),
        "build_subset": build_runner(subset),
    }
    if args.only:
        wanted = set(args.only.split(","))
        subjects = {name: run for name, run in subjects.items() if name in wanted}
    for run in subjects.values():  # warm up every code path (and fill the breakers' windows)
        run(max(args.calls // 5, 500), clock)
    rounds: dict[str, list[float]] = {name: [] for name in subjects}
    order = list(subjects)
    shuffler = random.Random(16)
    for _ in range(args.repeats):
        shuffler.shuffle(order)
        for name in order:
            gc.collect()
            rounds[name].append(subjects[name](args.calls, clock))
    loop.close()

    def ratio(numerator: str, denominator: str) -> list[float]:
        pairs = zip(rounds[numerator], rounds[denominator], strict=True)
        return [n / d for n, d in pairs]

    report: dict[str, Any] = {
        "unit": "ns per call (build_*: per UpstreamPolicies), median of rounds [min, max]",
        "clock": "wall" if args.wall else "thread CPU time",
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {platform.system()}",
        "runtime": RUNTIME_BUILD,
        "calls_per_round": args.calls,
        "rounds": args.repeats,
        "ns": {
            name: [round(statistics.median(v)), round(min(v)), round(max(v))]
            for name, v in rounds.items()
        },
        "ratios": {},
        "build_bytes": {
            name: round(build_bytes(policy))
            for name, policy in (("build_full", full), ("build_subset", subset))
            if name in subjects
        },
    }
    for name, numerator, denominator in RATIOS:
        if numerator not in rounds or denominator not in rounds:
            continue
        values = ratio(numerator, denominator)
        report["ratios"][name] = [
            round(statistics.median(values), 3),
            round(min(values), 3),
            round(max(values), 3),
        ]
    if args.json:
        json.dump(report, sys.stdout)
        sys.stdout.write("\n")
        return
    print(
        f"{report['clock']}, Python {report['python']}, {report['machine']}, "
        f"meshspec-runtime {RUNTIME_BUILD}: "
        f"{args.repeats} interleaved rounds of {args.calls} calls; median [min-max]"
    )
    for name, (median, low, high) in report["ns"].items():
        unit = "ns/build" if name.startswith("build") else "ns/call"
        print(f"  {name:<22} {median:>9,} {unit:<8} [{low:,}-{high:,}]")
    for name, size in report["build_bytes"].items():
        print(f"  {name + ' bytes':<22} {size:>9,} B/object retained (tracemalloc)")
    print("ratios (median of per-round ratios [min-max]):")
    for name, (median, low, high) in report["ratios"].items():
        print(f"  {name:<30} {median:>7.3f}  [{low:.3f}-{high:.3f}]")


if __name__ == "__main__":
    main()
