"""Shared measuring for the validate and compile benchmarks: every contender under the same
conditions, interleaved, reported as median and range.

Two ways of measuring, the same for every contender:

- in this process, with the cyclic garbage collector paused for every contender (meshspec
  pauses it itself; the parsers it is compared with get the same pause), after a full
  collection, timing wall-clock and CPU time (user + system, so file writes count);
- as a whole process (interpreter start and imports included), timing wall-clock and CPU time
  (``os.wait4``) and the process's own peak resident memory (``VmHWM``, which the process
  reports as it exits: ``ru_maxrss`` would carry over this larger process's peak through
  ``exec``).
"""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

_PEAK_REPORTER = """\
import atexit, os, sys
def _report_peak():
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    os.write(2, f"\\nPEAK_KB {peak}\\n".encode())
atexit.register(_report_peak)
"""

CLI_SCRIPT = (
    _PEAK_REPORTER
    + """\
import runpy
sys.argv = ["meshspec", *sys.argv[1:]]
runpy.run_module("meshspec.cli", run_name="__main__")
"""
)
"""``python -c CLI_SCRIPT ARGS...`` runs ``meshspec ARGS...`` and reports its peak memory."""

PARSE_SCRIPT = (
    _PEAK_REPORTER
    + """\
import gc
gc.disable()  # the same GC condition as meshspec, which pauses it while it loads a spec
data = open(sys.argv[2], "rb").read()
if sys.argv[1] == "pyyaml":
    import yaml
    yaml.load(data, Loader=yaml.CSafeLoader)
elif sys.argv[1] == "yaml-rs":
    import yaml_rs
    yaml_rs.loads(data.decode(), parse_datetime=False)
else:
    raise SystemExit(f"unknown parser {sys.argv[1]}")
"""
)
"""A process that only parses the file (``python -c PARSE_SCRIPT PARSER FILE``)."""


@dataclass
class Samples:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    peak_mb: list[float] = field(default_factory=list)


def in_process(action: Callable[[], Any]) -> tuple[float, float]:
    """Wall and CPU seconds of ``action``, with the collector paused (after a collection)."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        action()
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        if was_enabled:
            gc.enable()


def as_process(command: Sequence[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MB) of one process, which
    reports the latter (``CLI_SCRIPT``, ``PARSE_SCRIPT``)."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    stderr = child.stderr.read().decode() if child.stderr else ""
    if child.stderr:
        child.stderr.close()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode}):\n{stderr}")
    peak = [line for line in stderr.splitlines() if line.startswith("PEAK_KB ")]
    if not peak:
        raise SystemExit(f"{' '.join(command)} did not report its peak memory")
    return wall, usage.ru_utime + usage.ru_stime, int(peak[-1].split()[1]) / 1024


def cli_process(*arguments: str) -> list[str]:
    return [sys.executable, "-c", CLI_SCRIPT, *arguments]


def parse_process(parser: str, path: str) -> list[str]:
    return [sys.executable, "-c", PARSE_SCRIPT, parser, path]


def describe(values: list[float], unit: str = "s", scale: float = 1.0) -> str:
    median = statistics.median(values) * scale
    low, high = min(values) * scale, max(values) * scale
    return f"median {median:8.3f} {unit}  range {low:8.3f} - {high:8.3f}"


def ratio(top: list[float], bottom: list[float]) -> str:
    """The ratio of the medians, and its range over the rounds (each round's own ratio)."""
    per_round = [a / b for a, b in zip(top, bottom, strict=True)]
    middle = statistics.median(top) / statistics.median(bottom)
    return f"{middle:6.2f}  (per round {min(per_round):.2f} - {max(per_round):.2f})"
