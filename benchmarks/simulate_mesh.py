"""Simulating at mesh scale: 1 s of a generated 1,000-service mesh with light traffic.

The spec is ``gen_spec.generate`` (4 instances and up to 3 upstreams per service, every policy
of its defaults on); the traffic is 10 requests/s to each of the last ``--entries`` services
(whose call trees are small), so the work the traffic causes is small and what remains is what
the simulator spends on the mesh's size. Each round runs, in a fresh process reaped with
``os.wait4``, the whole ``meshspec simulate SCENARIO --json`` command: its CPU seconds (user +
system) and its peak RSS. A second process times the stages in process: loading the spec and
scenario, building the world (``World(...)``), and ``World.run``.

meshspec's own modules are compiled to bytecode first (``bytecode.py``), as an install does.

Target (issue 16): at most 1 s of CPU and 200 MB for the whole command.

    python benchmarks/simulate_mesh.py [--services 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bytecode import compile_sources
from gen_spec import generate, service_name
from meshspec_runtime import is_compiled

RATE_PER_ENTRY = 10
CPU_TARGET_S, RSS_TARGET_MB = 1.0, 200.0


def scenario_text(services: int, entries: int) -> str:
    traffic = "".join(
        f"  - {{to: {service_name(index)}, rate: {RATE_PER_ENTRY}/s}}\n"
        for index in range(services - entries, services)
    )
    return (
        "apiVersion: meshspec/v1\nkind: Scenario\nname: mesh-scale\nmesh: spec.yaml\n"
        "duration: 1s\nseed: 1\n"
        f"traffic:\n{traffic}"
        "behaviour:\n  default: {latency: {median: 5ms, p99: 20ms}}\n"
    )


def stages(scenario_path: Path) -> None:
    """In this process: seconds of CPU per stage, and the peak RSS, as one JSON line."""
    from meshspec.sim.runner import Source
    from meshspec.sim.world import World

    started = time.process_time()
    loaded, mesh = Source(scenario_path).load()
    load = time.process_time()
    world = World(mesh, loaded.scenario, loaded.scenario.seed)
    built = time.process_time()
    recorder = world.run()
    ran = time.process_time()
    calls = sum(sum(edge.calls) for edge in recorder.edges.values())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "load_s": load - started,
                "build_s": built - load,
                "run_s": ran - built,
                "calls": calls,
                "peak_mb": peak_mb,
            }
        )
    )


def reaped(command: list[str]) -> tuple[float, float, str]:
    """Run ``command``: (its CPU seconds, its peak RSS in MB, its stdout)."""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors)
        assert process.stdout is not None
        out = process.stdout.read()
        process.stdout.close()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode not in (0, 1):  # 1: an expectation failed (there are none)
            errors.seek(0)
            message = errors.read().decode(errors="replace")[-2000:]
            raise SystemExit(f"{' '.join(command[:3])} failed: {message}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.decode()


def spread(values: list[float], unit: str) -> str:
    return f"{statistics.median(values):8.3f} {unit}  [{min(values):.3f}-{max(values):.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stages", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stages is not None:
        stages(args.stages)
        return
    compile_sources()
    with tempfile.TemporaryDirectory(prefix="meshspec-sim-mesh-") as folder:
        work = Path(folder)
        (work / "spec.yaml").write_text(generate(args.services))
        scenario_path = work / "scenario.yaml"
        scenario_path.write_text(scenario_text(args.services, args.entries))
        command = [str(Path(sys.executable).with_name("meshspec")), "simulate"]
        command += [str(scenario_path), "--json"]
        in_process = [sys.executable, str(Path(__file__).resolve()), "--stages"]
        in_process.append(str(scenario_path))
        cpu, rss = [], []
        rows: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            seconds, peak, _ = reaped(command)
            cpu.append(seconds)
            rss.append(peak)
            _, _, out = reaped(in_process)
            for key, value in json.loads(out).items():
                rows.setdefault(key, []).append(value)
    print(
        f"1 s of a generated {args.services}-service mesh (4 instances, <= 3 upstreams each), "
        f"{args.entries} entry services at {RATE_PER_ENTRY}/s; "
        f"medians [min-max] of {args.rounds} rounds; meshspec-runtime "
        f"{'compiled by mypyc' if is_compiled() else 'plain Python'}"
    )
    print(f"  meshspec simulate, CPU:      {spread(cpu, 's ')} (target <= {CPU_TARGET_S} s)")
    print(f"  meshspec simulate, peak RSS: {spread(rss, 'MB')} (target <= {RSS_TARGET_MB} MB)")
    print(f"  in process: load spec+scenario {spread(rows['load_s'], 's')}")
    print(f"              build the world    {spread(rows['build_s'], 's')}")
    print(f"              World.run          {spread(rows['run_s'], 's')}")
    print(f"              calls simulated    {statistics.median(rows['calls']):8.0f}")
    print(f"              peak RSS           {spread(rows['peak_mb'], 'MB')}")


if __name__ == "__main__":
    main()
