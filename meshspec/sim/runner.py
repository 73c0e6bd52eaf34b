"""Runs: one seed, several seeds in parallel processes (means with 95% confidence intervals),
and a comparison of two specs under the same scenario and seeds."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshspec.gcpause import collector_paused
from meshspec.sim.alerts import AlertRules, compile_rules, find_promtool, first_fired
from meshspec.sim.expect import AlertExpectation, Verdict, judge, judge_alert, measure
from meshspec.sim.load import LoadedScenario, load_mesh, load_scenario, read_scenario
from meshspec.sim.mesh import MeshModel
from meshspec.sim.metrics import rounded, summarise
from meshspec.sim.scenario import Scenario
from meshspec.sim.world import World

REPORT_FORMAT = 1

# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom (then ~normal).
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


@dataclass(frozen=True)
class Source:
    """Where a run's inputs come from, picklable for worker processes."""

    scenario: Path
    spec: Path | None = None
    """None: the mesh the scenario names."""
    env: str | None = None
    overrides: tuple[str, ...] = ()

    def load(self) -> tuple[LoadedScenario, MeshModel]:
        # The spec, the mesh model and the scenario: long-lived objects, none garbage.
        with collector_paused(freeze=True):
            return self._load()

    def _load(self) -> tuple[LoadedScenario, MeshModel]:
        scenario, _ = read_scenario(self.scenario)
        spec = self.spec_path(scenario)
        if spec is None:
            return load_scenario(self.scenario)  # raises the located "no mesh" error
        env = self.env or scenario.env
        mesh = load_mesh(spec, env, self.overrides)
        return load_scenario(self.scenario, mesh, env)

    def spec_path(self, scenario: Scenario) -> Path | None:
        if self.spec is None and scenario.mesh is not None:
            return self.scenario.parent / scenario.mesh
        return self.spec

    def alert_rules(self, loaded: LoadedScenario, mesh: MeshModel) -> AlertRules | None:
        """The bundle's alert rules and promtool, when the scenario expects an alert (None
        otherwise). Raises AlertsUnavailable without promtool."""
        if not any(isinstance(exp, AlertExpectation) for exp in loaded.expectations):
            return None
        promtool = find_promtool()
        spec = self.spec_path(loaded.scenario)
        assert spec is not None  # the scenario loaded, so it has a mesh
        env = self.env or loaded.scenario.env
        return AlertRules(compile_rules(spec, env, self.overrides), mesh, promtool)


def run_once(
    loaded: LoadedScenario,
    mesh: MeshModel,
    seed: int,
    progress: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """One run: the summary (totals and series), floats rounded so reports are stable."""
    world = World(mesh, loaded.scenario, seed, progress=progress)
    recorder = world.run()
    recovery = loaded.scenario.recovery
    # The summary is a tree of fresh, acyclic dicts and lists (hundreds of thousands for a
    # large mesh): nothing for the collector to find, but its passes would walk everything.
    with collector_paused(freeze=True):
        summary = summarise(recorder, recovery.ratio, recovery.success_rate)
        out: dict[str, Any] = rounded(summary)
    return out


_WORKER_INPUT: tuple[LoadedScenario, MeshModel] | None = None
"""The parsed scenario and mesh a worker process got once, when it started."""


def _receive(loaded: LoadedScenario, mesh: MeshModel) -> None:
    global _WORKER_INPUT
    _WORKER_INPUT = (loaded, mesh)


def _run_seed(seed: int) -> dict[str, Any]:
    assert _WORKER_INPUT is not None, "the pool's initializer ships the input"
    loaded, mesh = _WORKER_INPUT
    return run_once(loaded, mesh, seed)


def run_seeds(
    source: Source,
    seeds: Sequence[int],
    jobs: int,
    *,
    loaded: tuple[LoadedScenario, MeshModel] | None = None,
    progress: Callable[[float], None] | None = None,
    on_done: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """One summary per seed, in seed order, with ``jobs`` worker processes.

    The spec and scenario are parsed once, here, and shipped to each worker as data when it
    starts (not re-read per seed)."""
    scenario, mesh = loaded if loaded is not None else source.load()
    if jobs <= 1 or len(seeds) <= 1:
        out = []
        for seed in seeds:
            out.append(run_once(scenario, mesh, seed, progress))
            if on_done is not None:
                on_done()
        return out
    from concurrent.futures import ProcessPoolExecutor  # only here: multiprocessing, pickle

    with ProcessPoolExecutor(
        max_workers=min(jobs, len(seeds)), initializer=_receive, initargs=(scenario, mesh)
    ) as pool:
        futures = [pool.submit(_run_seed, seed) for seed in seeds]
        results = []
        for future in futures:
            results.append(future.result())
            if on_done is not None:
                on_done()
        return results


def confidence(values: Sequence[float]) -> tuple[float, tuple[float, float] | None]:
    """Mean and 95% confidence interval of the mean (None for a single value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None
    t = _T975[len(values) - 2] if len(values) - 1 <= len(_T975) else 1.96
    half = t * statistics.stdev(values) / math.sqrt(len(values))
    return mean, (mean - half, mean + half)


def aggregate(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per service and edge, every numeric total: mean and 95% CI over the seeds."""
    out: dict[str, Any] = {}
    for table in ("services", "edges"):
        rows: dict[str, Any] = {}
        for name in summaries[0][table]:
            row: dict[str, Any] = {}
            for metric, first in summaries[0][table][name].items():
                if isinstance(first, dict):
                    continue
                values = [s[table][name][metric] for s in summaries]
                present = [float(v) for v in values if v is not None]
                if len(present) < len(values):
                    row[metric] = {
                        "mean": None,
                        "ci95": None,
                        "missing": len(values) - len(present),
                    }
                    continue
                mean, ci = confidence(present)
                row[metric] = {"mean": mean, "ci95": list(ci) if ci else None}
            rows[name] = row
        out[table] = rows
    result: dict[str, Any] = rounded(out)
    return result


def verdicts(
    loaded: LoadedScenario,
    summaries: Sequence[dict[str, Any]],
    alerts: AlertRules | None = None,
) -> list[Verdict]:
    """Judge every expectation on the mean over seeds (None in any seed fails it); alert
    expectations on every seed's run, by the bundle's rules (``alerts``: required when the
    scenario has them; AlertEvaluationError when promtool fails)."""
    expected = [exp for exp in loaded.expectations if isinstance(exp, AlertExpectation)]
    fired: dict[AlertExpectation, tuple[float | None, ...]] = {}
    if expected:
        if alerts is None:
            raise ValueError("the scenario expects alerts: give the bundle's rules (alerts=)")
        times = first_fired(expected, summaries, loaded.scenario.duration, alerts)
        fired = dict(zip(expected, times, strict=True))
    out = []
    for exp in loaded.expectations:
        if isinstance(exp, AlertExpectation):
            out.append(judge_alert(exp, fired[exp]))
            continue
        values = [measure(exp, s) for s in summaries]
        if any(v is None for v in values):
            out.append(judge(exp, None))
            continue
        mean, ci = confidence([v for v in values if v is not None])
        out.append(judge(exp, float(f"{mean:.6g}"), ci))
    return out


def build_report(
    loaded: LoadedScenario,
    mesh: MeshModel,
    seeds: Sequence[int],
    summaries: Sequence[dict[str, Any]],
    results: Sequence[Verdict],
    compare: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report.json document: deterministic (no clock, no absolute paths).

    ``summaries`` (from :func:`run_once`) and ``compare`` (from :func:`compare_runs`) come
    rounded already; the rest is rounded here."""
    scenario = loaded.scenario
    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "scenario": scenario.name,
        "description": scenario.description,
        "mesh": mesh.name,
        "duration": scenario.duration,
        "seeds": list(seeds),
        "passed": all(v.passed for v in results),
        "expectations": [v.as_dict() for v in results],
    }
    out: dict[str, Any] = rounded(report)
    out["run"] = summaries[0]
    if len(summaries) > 1:
        out["aggregate"] = aggregate(summaries)
    if compare is not None:
        out["compare"] = compare
    return out


def compare_runs(
    baseline: Sequence[dict[str, Any]], candidate: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Means of both runs and their difference (candidate - baseline), per service and edge."""
    a, b = aggregate(baseline), aggregate(candidate)
    out: dict[str, Any] = {}
    for table in ("services", "edges"):
        rows: dict[str, Any] = {}
        for name, row in a[table].items():
            other = b[table].get(name)
            if other is None:
                continue
            metrics: dict[str, Any] = {}
            for metric, cell in row.items():
                x, y = cell["mean"], other[metric]["mean"]
                metrics[metric] = {
                    "baseline": x,
                    "candidate": y,
                    "delta": None if x is None or y is None else y - x,
                }
            rows[name] = metrics
        out[table] = rows
    result: dict[str, Any] = rounded(out)
    return result
