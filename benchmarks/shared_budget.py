"""Cost of a retry budget shared through Redis on the call path, next to a local one.

A budget of ``scope: service`` decides from a local view; the exchange with Redis runs in a
background thread (``RedisStore``). This measures what the call path pays for that: the same
``call_sync`` through one ``UpstreamPolicies`` (least request over 3 endpoints, a circuit
breaker, a retry budget), its budget local or shared, on two paths:

- ``success``: one attempt that succeeds (the budget takes a deposit);
- ``retry``: a first attempt answered 503, retried at once (no sleep), then a success (a
  deposit and a withdrawal).

Both kinds of budget are measured (``window``: Finagle's; ``bucket``: a token bucket), sized so
that every retry is granted, local and shared alike (the same path every call). The shared
budgets exchange with a real ``redis-server`` every 100 ms meanwhile: the one at ``--redis``,
or one this script starts on a free loopback port (and stops) when the binary is installed.

Each figure is the median over ``--repeats`` rounds of the mean over ``--calls`` calls, in CPU
time of the benchmarking thread (``time.thread_time_ns``: the exchange thread's work is not
the call path's); contenders run interleaved round by round, with the garbage collector on for
all; ratios are medians of per-round ratios, ranges are min-max over the rounds. Prints one
JSON object.

    python benchmarks/shared_budget.py [--calls 20000] [--repeats 15] [--redis URL]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.drivers.sync import call_sync
from meshspec_runtime.policy.config import (
    BackoffConfig,
    CircuitBreakerConfig,
    Jitter,
    RetryBudgetConfig,
    RetryConfig,
    UpstreamPolicy,
)
from meshspec_runtime.policy.upstream import UpstreamPolicies
from meshspec_runtime.shared.redis import RedisStore

BUDGETS = {
    "window": RetryBudgetConfig(ratio=1.0, min_per_second=1e6, window=10),
    "bucket": RetryBudgetConfig(kind="bucket", ratio=1.0, cap=1e9),
}
"""Every retry granted: each request deposits a whole token on top of a vast reserve."""


class Answer:
    __slots__ = ("status",)

    def __init__(self, status: int) -> None:
        self.status = status


OK, UNAVAILABLE = Answer(200), Answer(503)


def no_sleep(_delay: float) -> None:
    pass


def upstream(budget: RetryBudgetConfig) -> UpstreamPolicies:
    policy = UpstreamPolicy(
        circuit_breaker=CircuitBreakerConfig(failure_on=("connect-failure",)),
        retry=RetryConfig(
            attempts=2,
            backoff=BackoffConfig(base=1e-9, max=1e-9, jitter=Jitter.NONE),
            budget=budget,
        ),
    )
    endpoints = [Endpoint(id=f"e{i}", address=f"10.0.0.{i + 1}", port=80) for i in range(3)]
    return UpstreamPolicies(policy, endpoints, rng=random.Random(7))


def candidates(store: RedisStore) -> dict[str, Callable[[], object]]:
    def succeed(_endpoint: Endpoint, _timeout: float) -> Answer:
        return OK

    flip = [False]

    def fail_then_succeed(_endpoint: Endpoint, _timeout: float) -> Answer:
        flip[0] = not flip[0]
        return UNAVAILABLE if flip[0] else OK

    made: dict[str, Callable[[], object]] = {}
    for kind, config in BUDGETS.items():
        local = upstream(config)
        shared = upstream(config.model_copy(update={"scope": "service"}))
        shared.budget = store.share(
            shared.policy.retry.budget,  # type: ignore[arg-type]
            mesh="bench",
            caller="caller",
            upstream=f"server-{kind}",
        )
        for name, policies in (("local", local), ("shared", shared)):
            made[f"{kind}_{name}_success"] = calling(policies, succeed)
            made[f"{kind}_{name}_retry"] = calling(policies, fail_then_succeed)
    return made


def calling(
    policies: UpstreamPolicies, attempt: Callable[[Endpoint, float], Answer]
) -> Callable[[], object]:
    def call() -> Answer:
        return call_sync(policies, attempt, sleep=no_sleep)

    return call


def ns_per_call(fn: Callable[[], object], calls: int) -> float:
    started = time.thread_time_ns()
    for _ in range(calls):
        fn()
    return (time.thread_time_ns() - started) / calls


@contextlib.contextmanager
def redis_url(given: str | None) -> Iterator[str]:
    """``given``, or a redis-server started here on a free loopback port (stopped by PID)."""
    if given is not None:
        yield given
        return
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed: pass --redis URL")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        server = subprocess.Popen(
            [binary, *args, "--dir", folder], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            server.terminate()
            server.wait(10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=20000, help="calls per round")
    parser.add_argument("--repeats", type=int, default=15, help="rounds per contender")
    parser.add_argument("--redis", help="a Redis URL (default: start a redis-server here)")
    args = parser.parse_args(argv)
    with redis_url(args.redis) as url:
        store = RedisStore(url, period=0.1)
        try:
            subjects = candidates(store)
            deadline = time.monotonic() + 5
            while not all(e.state == "shared" for e in store.exchanges):
                if time.monotonic() > deadline:
                    sys.exit(f"the shared budgets did not join through {url}")
                time.sleep(0.01)
            for fn in subjects.values():  # warm every path up
                ns_per_call(fn, max(args.calls // 5, 500))
            rounds: dict[str, list[float]] = {name: [] for name in subjects}
            for _ in range(args.repeats):
                for name, fn in subjects.items():
                    rounds[name].append(ns_per_call(fn, args.calls))
            still_shared = all(e.state == "shared" for e in store.exchanges)
        finally:
            store.close()

    def ratio(numerator: str, denominator: str) -> float:
        pairs = zip(rounds[numerator], rounds[denominator], strict=True)
        return statistics.median(n / d for n, d in pairs)

    report: dict[str, object] = {
        "unit": "ns per call, thread CPU time (median of rounds; [min, max])",
        "python": platform.python_version(),
        "calls_per_round": args.calls,
        "rounds": args.repeats,
        "shared_throughout": still_shared,
        **{
            name: [round(statistics.median(v)), round(min(v)), round(max(v))]
            for name, v in rounds.items()
        },
    }
    for kind in BUDGETS:
        for path in ("success", "retry"):
            report[f"ratio_{kind}_{path}_shared_per_local"] = round(
                ratio(f"{kind}_shared_{path}", f"{kind}_local_{path}"), 3
            )
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
