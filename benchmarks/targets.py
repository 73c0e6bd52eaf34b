"""Every performance target of the runtime and the compiler, measured in one run.

Runs, one after the other and each in its own process, the benchmarks that print the figures
the targets are stated in: ``runtime_overhead.py`` (the call paths and building policies),
``startup.py`` (``Mesh.open`` against the mesh's size), ``simulate_mesh.py`` (1 s of a
1,000-service mesh) and ``compile.py`` (20,000 services against PyYAML's parse). Their output
is printed as it comes, whole; then a table of each target, the figure measured and whether it
is met. A figure a benchmark did not print is an error, never a guess.

The runtime build measured is whichever ``meshspec_runtime`` the interpreter imports (each
benchmark's first line says which); ``PYTHONPATH`` passes through to every benchmark. An
editable install is plain Python; to measure the compiled build:

    pip wheel --no-deps -w /tmp/wheel ./runtime
    unzip -q -o /tmp/wheel/meshspec_runtime-*.whl -d /tmp/compiled
    PYTHONPATH=/tmp/compiled python benchmarks/targets.py

    python benchmarks/targets.py [--quick]

``--quick`` runs fewer rounds (a check of the machinery, not figures to quote).
"""

from __future__ import annotations

import argparse
import operator
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Target:
    what: str
    benchmark: str
    pattern: str
    """A regular expression whose first group is the figure, in that benchmark's output."""
    compare: Callable[[float, float], bool]
    bound: float
    unit: str

    def figure(self, outputs: dict[str, str]) -> str:
        """The figure as its benchmark printed it."""
        found = re.search(self.pattern, outputs[self.benchmark], re.MULTILINE)
        if found is None:
            raise SystemExit(f"{self.benchmark} did not print {self.pattern!r}: {self.what}")
        return found.group(1)


AT_MOST, AT_LEAST = operator.le, operator.ge
TARGETS = (
    Target(
        "asyncio call, every policy: tenacity's async retry / meshspec",
        "runtime_overhead",
        r"^\s+tenacity_async_per_async\s+([\d.]+)",
        AT_LEAST,
        5.0,
        "x",
    ),
    Target(
        "asyncio call, every policy: meshspec / aiobreaker",
        "runtime_overhead",
        r"^\s+async_per_aiobreaker\s+([\d.]+)",
        AT_MOST,
        4.0,
        "x",
    ),
    Target(
        "sync call, every policy: meshspec / pybreaker",
        "runtime_overhead",
        r"^\s+full_per_pybreaker\s+([\d.]+)",
        AT_MOST,
        1.0,
        "x",
    ),
    Target(
        "sync call, subset: meshspec / pybreaker",
        "runtime_overhead",
        r"^\s+subset_per_pybreaker\s+([\d.]+)",
        AT_MOST,
        0.6,
        "x",
    ),
    Target(
        "building UpstreamPolicies again: CPU time",
        "runtime_overhead",
        r"^\s+build_full\s+([\d,]+) ns/build",
        AT_MOST,
        20_000,
        "ns",
    ),
    Target(
        "building UpstreamPolicies again: bytes retained (2 KB = 2,048 B)",
        "runtime_overhead",
        r"^\s+build_full bytes\s+([\d,]+) B",
        AT_MOST,
        2_048,
        "B",
    ),
    Target(
        "start-up, Mesh.open: 20,000 / 1,000 services (CPU)",
        "startup",
        r"^\s+ratio Mesh\.open cpu 20000 / 1000 services: ([\d.]+)",
        AT_MOST,
        1.5,
        "x",
    ),
    Target(
        "1 s of the 1,000-service mesh: CPU of the command",
        "simulate_mesh",
        r"^\s+meshspec simulate, CPU:\s+([\d.]+) s",
        AT_MOST,
        1.0,
        "s",
    ),
    Target(
        "1 s of the 1,000-service mesh: peak RSS of the command",
        "simulate_mesh",
        r"^\s+meshspec simulate, peak RSS:\s+([\d.]+) MB",
        AT_MOST,
        200.0,
        "MB",
    ),
    Target(
        "compile 20,000 services / PyYAML C parse, in process (CPU)",
        "compile",
        r"^\s+in process / PyYAML C parse\s+cpu\s+([\d.]+)",
        AT_MOST,
        1.0,
        "x",
    ),
    Target(
        "compile 20,000 services / PyYAML C parse, whole processes (CPU)",
        "compile",
        r"^\s+process\s+/ PyYAML C parse\s+cpu\s+([\d.]+)",
        AT_MOST,
        1.0,
        "x",
    ),
    Target(
        "compile 20,000 services / PyYAML C parse, peak memory",
        "compile",
        r"^\s+peak RSS\s+/ PyYAML C parse\s+([\d.]+)",
        AT_MOST,
        2.0,
        "x",
    ),
)

ARGUMENTS = {
    "runtime_overhead": ([], ["--calls", "1000", "--repeats", "3"]),
    "startup": ([], ["--rounds", "3", "--sizes", "1000", "20000"]),
    "simulate_mesh": (["--rounds", "5"], ["--rounds", "1"]),
    "compile": ([], ["--rounds", "1", "--services", "2000"]),
}
"""Per benchmark: its arguments for a real run, and for ``--quick``."""


def run(benchmark: str, arguments: list[str]) -> str:
    """Run ``benchmark`` with ``arguments``, echoing its output as it comes; returns it."""
    command = [sys.executable, str(HERE / f"{benchmark}.py"), *arguments]
    print(f"$ python benchmarks/{benchmark}.py {' '.join(arguments)}".rstrip(), flush=True)
    lines: list[str] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            lines.append(line)
    if process.returncode != 0:
        raise SystemExit(f"benchmarks/{benchmark}.py failed (exit {process.returncode})")
    print(flush=True)
    return "".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds: not for quoting")
    args = parser.parse_args()
    outputs = {
        name: run(name, quick if args.quick else full) for name, (full, quick) in ARGUMENTS.items()
    }
    print("targets" + (" (--quick: a check of the machinery, not figures)" if args.quick else ""))
    width = max(len(target.what) for target in TARGETS)
    missed = 0
    for target in TARGETS:
        shown = target.figure(outputs)
        met = target.compare(float(shown.replace(",", "")), target.bound)
        missed += not met
        sign = "<=" if target.compare is AT_MOST else ">="
        print(
            f"  {target.what:<{width}}  {shown:>8} {target.unit:<2}  "
            f"(target {sign} {target.bound:,g})  {'met' if met else 'NOT MET'}"
        )
    print(f"{len(TARGETS) - missed} of {len(TARGETS)} targets met")


if __name__ == "__main__":
    main()
