"""Does the distributed engine scale, and what does it cost per run?

Runs a 36-run sweep (9 combinations x 4 seeds of a short brownout on a two-service mesh) on a
local Dask cluster of worker processes, with 1 worker (the baseline) and with 2 workers,
alternating, ``--repeats`` times each; the garbage collector is left on for both and collected
before every repetition. Prints, per contender, the median and range of the wall time and the
throughput, then:

* speed-up: the median throughput with 2 workers over 1 worker (target: at least 1.7x);
* overhead per run, with 1 worker: (wall time - the runs' own time) / runs, against a run's
  median own time (target: at most 5%). A run's own time is measured inside the worker, so
  what remains is shipping the task, loading the spec (once per combination and worker) and
  gathering the result.

The machine's other load counts against the speed-up: run it on an idle machine.

    python benchmarks/sweep.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from distributed import LocalCluster

from meshspec.sweep.engine_dask import DaskEngine
from meshspec.sweep.plan import make_plan, read_inputs
from meshspec.sweep.run import pending_tasks
from meshspec.sweep.space import grid
from meshspec.sweep.store import ResultStore
from meshspec.sweep.work import RunResult

MESH = """\
apiVersion: meshspec/v1
mesh: {name: bench, datacenter: dc1, dns: {zone: bench.internal, ttl: 30s}}
defaults:
  timeout: 2s
  retry: {attempts: 2, per_try_timeout: 300ms, backoff: {base: 10ms, max: 100ms},
          budget: {ratio: 20%, min_per_second: 1/s}}
  load_balancer: {strategy: round_robin}
  health_check: {http: /healthz, interval: 2s, timeout: 1s}
services:
  front:
    port: 8080
    instances: [{address: 10.0.0.1}, {address: 10.0.0.2}]
    upstreams: {back: {}}
  back:
    port: 9090
    instances: [{address: 10.0.1.1}, {address: 10.0.1.2}, {address: 10.0.1.3}]
"""
SCENARIO = """\
apiVersion: meshspec/v1
kind: Scenario
name: bench
mesh: mesh.yaml
duration: 40s
traffic: [{to: front, rate: 150/s}]
behaviour: {default: {latency: {median: 5ms, p99: 20ms}}}
faults: [{at: 10s, for: 20s, service: back, fault: errors, rate: 30%}]
expect: [front.success_rate >= 97%]
"""
VARY = ("defaults.retry.attempts=2,3,4", "defaults.retry.budget.ratio=5%,20%,100%")
SEEDS = range(4)


def one_sweep(engine: DaskEngine, tasks: list[Any]) -> tuple[float, list[RunResult]]:
    results: list[RunResult] = []
    gc.collect()
    started = time.perf_counter()
    engine.run(tasks, results.append)
    return time.perf_counter() - started, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "mesh.yaml").write_text(MESH)
        (Path(folder) / "scenario.yaml").write_text(SCENARIO)
        plan = make_plan(read_inputs(None, Path(folder) / "scenario.yaml", None), VARY)
    tasks = pending_tasks(plan, grid(plan.axes), SEEDS, ResultStore(None, plan.inputs))
    clusters = {
        workers: LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
        for workers in (1, 2)
    }
    engines = {n: DaskEngine(c.scheduler_address) for n, c in clusters.items()}
    walls: dict[int, list[float]] = {1: [], 2: []}
    own: dict[int, list[float]] = {1: [], 2: []}
    try:
        for engine in engines.values():  # warm-up: imports and the load cache
            one_sweep(engine, tasks)
        for _ in range(args.repeats):
            for n, engine in engines.items():
                wall, results = one_sweep(engine, tasks)
                assert all(r.ok for r in results) and len(results) == len(tasks)
                walls[n].append(wall)
                own[n].append(sum(r.seconds for r in results))
    finally:
        for engine in engines.values():
            engine.close()
        for cluster in clusters.values():
            cluster.close()
    runs = len(tasks)
    print(f"{runs}-run sweep on a local Dask cluster, {args.repeats} repeats, interleaved")
    for n in (1, 2):
        w = walls[n]
        print(
            f"  {n} worker{'s' if n > 1 else ' '}: wall median {statistics.median(w):.2f}s "
            f"(range {min(w):.2f}-{max(w):.2f}s), "
            f"throughput {runs / statistics.median(w):.2f} runs/s"
        )
    speedup = statistics.median(walls[1]) / statistics.median(walls[2])
    print(f"  speed-up, 2 workers over 1 (baseline): {speedup:.2f}x (target >= 1.7x)")
    per_run = [(wall - mine) / runs for wall, mine in zip(walls[1], own[1], strict=True)]
    run_time = statistics.median(own[1]) / runs
    overhead = statistics.median(per_run)
    print(
        f"  overhead per run (1 worker): median {overhead * 1000:.1f}ms "
        f"(range {min(per_run) * 1000:.1f}-{max(per_run) * 1000:.1f}ms) against a run's "
        f"{run_time * 1000:.0f}ms: {overhead / run_time:.1%} (target <= 5%)"
    )


if __name__ == "__main__":
    main()
