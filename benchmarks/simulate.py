"""How much do the runtime's policies and the simulator's bookkeeping cost over bare SimPy?

Runs, in one process, the same open-loop Poisson arrivals and lognormal service times through
a three-hop call graph (traffic -> front -> middle -> back):

* ``meshspec``: ``meshspec.sim.world.World`` with full policies on every edge (retries with a
  budget, per-try timeouts, adaptive throttling, a rate breaker with slow calls, outlier
  detection, least-request balancing, a bulkhead), metrics on;
* ``bare``: a plain SimPy model of the same arrivals and service times: one process per hop,
  each caller waiting for its callee, no policies, no metrics.

Prints one JSON object: requests, seconds for each, and their ratio (target: <= 3). Times
are CPU seconds of this process (``time.process_time``), so other work on a shared machine
does not skew the ratio; each model runs ``--repeats`` times, alternating, and the fastest
run of each counts.

    python benchmarks/simulate.py [--requests 1000000]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Generator
from typing import Any

import simpy
from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.policy.config import (
    AdaptiveThrottleConfig,
    BackoffConfig,
    CircuitBreakerConfig,
    LoadBalancerConfig,
    OutlierDetectionConfig,
    RetryBudgetConfig,
    RetryConfig,
    SlowCallConfig,
    Strategy,
    UpstreamPolicy,
)

from meshspec.sim.mesh import HealthModel, MeshModel, ServiceModel
from meshspec.sim.scenario import Scenario
from meshspec.sim.world import World

RATE = 2000.0
MEDIAN, P99 = "5ms", "20ms"
HOPS = ("front", "middle", "back")
INSTANCES = 4

POLICY = UpstreamPolicy(
    timeout=2.0,
    retry=RetryConfig(
        attempts=3,
        per_try_timeout=0.5,
        backoff=BackoffConfig(base=0.025, max=1.0),
        budget=RetryBudgetConfig(ratio=0.2, min_per_second=10, window=10),
    ),
    adaptive_throttle=AdaptiveThrottleConfig(k=2.0),
    circuit_breaker=CircuitBreakerConfig(slow_calls=SlowCallConfig(over=1.0, rate=0.8)),
    load_balancer=LoadBalancerConfig(strategy=Strategy.LEAST_REQUEST),
    outlier_detection=OutlierDetectionConfig(),
    concurrency_limit=10_000,
)


def mesh() -> MeshModel:
    services = {}
    for index, name in enumerate(HOPS):
        endpoints = tuple(
            Endpoint(id=f"{name}-{i}", address=f"10.0.{index}.{i + 1}", port=8080)
            for i in range(INSTANCES)
        )
        upstreams = {HOPS[index + 1]: POLICY} if index + 1 < len(HOPS) else {}
        services[name] = ServiceModel(name, endpoints, upstreams, HealthModel(interval=10.0))
    return MeshModel("bench", services)


def scenario(duration: float) -> Scenario:
    return Scenario.model_validate(
        {
            "apiVersion": "meshspec/v1",
            "kind": "Scenario",
            "name": "bench",
            "duration": f"{duration}s",
            "seed": 1,
            "traffic": [{"to": HOPS[0], "rate": RATE}],
            "behaviour": {"default": {"latency": {"median": MEDIAN, "p99": P99}}},
        }
    )


def run_meshspec(duration: float) -> tuple[float, int]:
    world = World(mesh(), scenario(duration), 1)
    started = time.process_time()
    recorder = world.run()
    elapsed = time.process_time() - started
    return elapsed, sum(recorder.edges[f"@traffic->{HOPS[0]}"].calls)


def run_bare(duration: float) -> tuple[float, int]:
    """The same arrivals and service-time draws, with nothing but SimPy."""
    spec = scenario(duration)
    latency = spec.behaviour["default"].latency
    assert latency is not None
    fitted = latency.lognormal()
    assert fitted is not None
    mu, sigma = fitted
    env = simpy.Environment()
    arrivals = random.Random("1/traffic")
    service = random.Random("1/behaviour")
    draw = service.lognormvariate
    done = [0]

    def hop(depth: int) -> Generator[simpy.Event, Any, None]:
        yield env.timeout(draw(mu, sigma))
        if depth + 1 < len(HOPS):
            yield env.process(hop(depth + 1))

    def request() -> Generator[simpy.Event, Any, None]:
        yield env.process(hop(0))
        done[0] += 1

    def traffic() -> Generator[simpy.Event, Any, None]:
        while True:
            yield env.timeout(arrivals.expovariate(RATE))
            env.process(request())

    env.process(traffic())
    started = time.process_time()
    env.run(until=duration)
    return time.process_time() - started, done[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    duration = args.requests / RATE
    bares, fulls = [], []
    for _ in range(args.repeats):
        bares.append(run_bare(duration))
        fulls.append(run_meshspec(duration))
    bare, bare_done = min(bares)
    full, full_done = min(fulls)
    print(
        json.dumps(
            {
                "requests": args.requests,
                "hops": len(HOPS),
                "repeats": args.repeats,
                "bare_simpy_cpu_s": round(bare, 2),
                "bare_completed": bare_done,
                "meshspec_cpu_s": round(full, 2),
                "meshspec_completed": full_done,
                "ratio": round(full / bare, 2),
                "target_ratio": 3.0,
            }
        )
    )


if __name__ == "__main__":
    main()
