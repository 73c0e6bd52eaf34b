"""How much do the runtime's policies and the simulator's bookkeeping cost over bare SimPy?

The same open-loop Poisson arrivals (2,000/s) and lognormal service times (median 5 ms, p99
20 ms) through a three-hop call graph (traffic -> front -> middle -> back), two ways:

* ``meshspec``: the spec written below (4 instances per service; retries with a budget,
  per-try timeouts, adaptive throttling, a rate breaker with slow calls, outlier detection,
  least-request balancing, a bulkhead on every edge), metrics on;
* ``bare``: a minimal SimPy model: one process per request, each hop a ``yield from`` of the
  next (no process per hop), no policies, no metrics.

Both draw the arrivals and the service times from the same seeded streams in the same order
(``random.Random("1/traffic")``, ``random.Random("1/behaviour")``), run the same simulated
time, and run with the garbage collector on (as ``meshspec simulate`` does). Both report how
many requests finished (meshspec: calls ended, whatever their outcome), as a check that they
did the same work. meshspec's adaptive throttle refuses a few requests at the very start (its
counts begin empty), so its hops and draws are slightly fewer than bare's: bare is not
favoured.

Two comparisons, each the median (and range) of ``--rounds`` interleaved rounds, the order of
the contenders alternating from round to round:

* in process, CPU seconds (``time.process_time``): meshspec's building of the world
  (``World(...)``) plus ``World.run``, against building and running the bare model;
* whole commands, CPU seconds of the child process (user + system, from ``os.wait4``) and
  wall seconds: ``meshspec simulate SPEC SCENARIO --json`` (start-up, parsing, the run, the
  report) against ``python benchmarks/simulate.py --bare-process`` (start-up, the bare run).

Before the rounds, meshspec's own modules are compiled to bytecode (``bytecode.py``), as SimPy's
were when it was installed: neither command compiles sources at start-up.

The target: meshspec / bare at most 2.5 (in process and whole command).

    python benchmarks/simulate.py [--requests 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from meshspec_runtime import is_compiled

RATE = 2000.0
MEDIAN_MS, P99_MS = 5, 20
HOPS = ("front", "middle", "back")
INSTANCES = 4
SEED = 1
TARGET = 2.5

SPEC = """\
apiVersion: meshspec/v1
mesh: {name: bench, datacenter: dc1, dns: {zone: bench.internal, ttl: 30s}}
defaults:
  timeout: 2s
  retry:
    attempts: 3
    per_try_timeout: 500ms
    backoff: {base: 25ms, max: 1s, jitter: full}
    on: [connect-failure, timeout, 5xx]
    budget: {ratio: 20%, min_per_second: 10/s, window: 10s}
  circuit_breaker:
    window: {kind: count, size: 100}
    minimum_calls: 20
    failure_rate: 50%
    slow_calls: {over: 1s, rate: 80%}
    open_for: 30s
  load_balancer: {strategy: least_request, choices: 2}
  outlier_detection: {consecutive_failures: 5, base_ejection: 30s, max_ejected: 50%}
  adaptive_throttle: {k: 2}
  concurrency_limit: 10000
  health_check: {http: /healthz, interval: 10s, timeout: 2s}
services:
"""


def spec_text() -> str:
    lines = [SPEC]
    for index, name in enumerate(HOPS):
        lines.append(f"  {name}:\n    port: 8080\n    instances:\n")
        for instance in range(INSTANCES):
            lines.append(f"      - {{address: 10.0.{index}.{instance + 1}}}\n")
        if index + 1 < len(HOPS):
            lines.append(f"    upstreams:\n      {HOPS[index + 1]}: {{}}\n")
    return "".join(lines)


def scenario_text(duration: float) -> str:
    return (
        "apiVersion: meshspec/v1\nkind: Scenario\nname: bench\nmesh: spec.yaml\n"
        f"duration: {duration:g}s\nseed: {SEED}\n"
        f"traffic:\n  - {{to: {HOPS[0]}, rate: {RATE:g}/s}}\n"
        f"behaviour:\n  default: {{latency: {{median: {MEDIAN_MS}ms, p99: {P99_MS}ms}}}}\n"
    )


# --- the bare model (imports SimPy only, so its process pays no meshspec start-up) -----------


def run_bare(duration: float, mu: float, sigma: float) -> int:
    """Arrivals and service times as meshspec draws them, with nothing but SimPy."""
    import simpy

    env = simpy.Environment()
    arrivals = random.Random(f"{SEED}/traffic")
    draw = random.Random(f"{SEED}/behaviour").lognormvariate
    timeout = env.timeout
    last = len(HOPS) - 1
    done = [0]

    def hop(depth: int) -> Generator[Any, Any, None]:
        yield timeout(draw(mu, sigma))
        if depth < last:
            yield from hop(depth + 1)

    def request() -> Generator[Any, Any, None]:
        yield from hop(0)
        done[0] += 1

    def traffic() -> Generator[Any, Any, None]:
        while True:
            delay = arrivals.expovariate(RATE)
            if env.now + delay >= duration:
                return
            yield timeout(delay)
            env.process(request())

    env.process(traffic())
    env.run()  # until every request started has finished, as meshspec drains
    return done[0]


# --- meshspec in process ---------------------------------------------------------------------


def lognormal_fit(scenario_path: Path) -> tuple[float, float]:
    from meshspec.sim.load import read_scenario

    scenario, _ = read_scenario(scenario_path)
    latency = scenario.behaviour["default"].latency
    assert latency is not None
    fitted = latency.lognormal()
    assert fitted is not None
    return fitted


def run_meshspec(scenario_path: Path) -> Callable[[], tuple[float, float, int]]:
    """Load once (untimed); each call builds a fresh world and runs it: (build s, run s, done)."""
    from meshspec.sim.runner import Source
    from meshspec.sim.world import World

    loaded, mesh = Source(scenario_path).load()

    def once() -> tuple[float, float, int]:
        started = time.process_time()
        world = World(mesh, loaded.scenario, SEED)
        built = time.process_time()
        recorder = world.run()
        ran = time.process_time()
        return built - started, ran - built, sum(recorder.edges[f"@traffic->{HOPS[0]}"].calls)

    return once


# --- whole processes --------------------------------------------------------------------------


def child_usage(command: list[str]) -> tuple[float, float, str]:
    """Run ``command``, reaped with ``os.wait4`` to read its own rusage: (its CPU seconds
    (user + system), wall seconds, stdout)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors)
        assert process.stdout is not None
        out = process.stdout.read()
        process.stdout.close()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        if process.returncode not in (0, 1):  # 1: an expectation failed (there are none)
            errors.seek(0)
            message = errors.read().decode(errors="replace")[-2000:]
            raise SystemExit(f"{' '.join(command[:3])} failed: {message}")
    return usage.ru_utime + usage.ru_stime, wall, out.decode()


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):8.3f} s  [{min(values):.3f}-{max(values):.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bare-process", nargs=3, type=float, metavar=("DURATION", "MU", "SIG"))
    args = parser.parse_args()
    if args.bare_process is not None:
        duration, mu, sigma = args.bare_process
        print(run_bare(duration, mu, sigma))
        return
    if args.rounds < 3:
        parser.error("--rounds: at least 3 (a median of fewer says little)")
    duration = args.requests / RATE
    from bytecode import compile_sources  # not in the bare model's process

    compile_sources()
    with tempfile.TemporaryDirectory(prefix="meshspec-sim-bench-") as folder:
        work = Path(folder)
        (work / "spec.yaml").write_text(spec_text())
        scenario_path = work / "scenario.yaml"
        scenario_path.write_text(scenario_text(duration))
        mu, sigma = lognormal_fit(scenario_path)
        meshspec_once = run_meshspec(scenario_path)
        meshspec_command = [
            str(Path(sys.executable).with_name("meshspec")),
            "simulate",
            str(scenario_path),
            "--json",
        ]
        bare_command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--bare-process",
            repr(duration),
            repr(mu),
            repr(sigma),
        ]
        rows: dict[str, list[float]] = {
            key: []
            for key in (
                "meshspec_build_cpu_s",
                "meshspec_run_cpu_s",
                "meshspec_build_run_cpu_s",
                "bare_cpu_s",
                "meshspec_command_cpu_s",
                "meshspec_command_wall_s",
                "bare_command_cpu_s",
                "bare_command_wall_s",
            )
        }
        completed: dict[str, int] = {}
        for round_number in range(args.rounds):

            def meshspec_in_process() -> None:
                build, run, done = meshspec_once()
                rows["meshspec_build_cpu_s"].append(build)
                rows["meshspec_run_cpu_s"].append(run)
                rows["meshspec_build_run_cpu_s"].append(build + run)
                completed["meshspec"] = done

            def bare_in_process() -> None:
                started = time.process_time()
                completed["bare"] = run_bare(duration, mu, sigma)
                rows["bare_cpu_s"].append(time.process_time() - started)

            def meshspec_whole() -> None:
                cpu, wall, out = child_usage(meshspec_command)
                rows["meshspec_command_cpu_s"].append(cpu)
                rows["meshspec_command_wall_s"].append(wall)
                json.loads(out)  # the whole report was written

            def bare_whole() -> None:
                cpu, wall, out = child_usage(bare_command)
                rows["bare_command_cpu_s"].append(cpu)
                rows["bare_command_wall_s"].append(wall)
                completed["bare_command"] = int(out)  # the same as in process, or the seed differs

            contenders = [meshspec_in_process, bare_in_process, meshspec_whole, bare_whole]
            if round_number % 2:
                contenders.reverse()
            for contender in contenders:
                contender()
        medians = {key: statistics.median(values) for key, values in rows.items()}
        ratios = {
            "in process, build + run (CPU)": (
                medians["meshspec_build_run_cpu_s"] / medians["bare_cpu_s"]
            ),
            "whole command (CPU)": (
                medians["meshspec_command_cpu_s"] / medians["bare_command_cpu_s"]
            ),
            "whole command (wall)": (
                medians["meshspec_command_wall_s"] / medians["bare_command_wall_s"]
            ),
        }
        print(
            f"{args.requests} requests ({duration:g} s simulated), {len(HOPS)} hops, "
            f"medians [min-max] of {args.rounds} interleaved rounds; meshspec-runtime "
            f"{'compiled by mypyc' if is_compiled() else 'plain Python'}"
        )
        print(f"requests finished: {json.dumps(completed)}")
        for key, values in rows.items():
            print(f"  {key:26} {summary(values)}")
        for label, ratio in ratios.items():
            print(f"  ratio meshspec / bare, {label:30} {ratio:6.2f}  (target <= {TARGET})")


if __name__ == "__main__":
    main()
