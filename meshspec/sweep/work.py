"""One run of a sweep, shipped as data: the spec's and scenario's text, the overrides and the
seed. A worker needs only the installed package, never the files the sweep was started from."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshspec.sim.load import LoadedScenario, check
from meshspec.sim.mesh import MeshModel, mesh_from_spec
from meshspec.sim.runner import run_once
from meshspec.sim.scenario import Scenario
from meshspec.spec.diagnostics import Diagnostic, SpecError
from meshspec.spec.document import Provenance, validate_data
from meshspec.spec.loader import load_spec_text
from meshspec.spec.yamlio import parse_text


@dataclass(frozen=True, slots=True)
class Inputs:
    """What every run of a sweep shares."""

    spec_text: str
    spec_name: str
    """How errors name the spec (its path on the machine that started the sweep)."""
    scenario_text: str
    scenario_name: str
    env: str | None


@dataclass(frozen=True, slots=True)
class RunTask:
    inputs: Inputs
    combination: str
    """The combination's key (see :mod:`meshspec.sweep.space`)."""
    overrides: tuple[str, ...]
    """``PATH=VALUE`` for each varied setting, as ``--set`` takes them."""
    seed: int


@dataclass(frozen=True, slots=True)
class RunResult:
    combination: str
    seed: int
    ok: bool
    totals: dict[str, Any] = field(default_factory=dict)
    """The run's totals per service and per edge (numbers only); empty when it failed."""
    error: str = ""
    seconds: float = 0.0
    """Wall-clock time of the run itself (loading excluded), for the overhead figures."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "combination": self.combination,
            "seed": self.seed,
            "ok": self.ok,
            "totals": self.totals,
            "error": self.error,
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        return cls(
            str(data["combination"]),
            int(data["seed"]),
            bool(data["ok"]),
            dict(data.get("totals") or {}),
            str(data.get("error", "")),
            float(data.get("seconds", 0.0)),
        )


def load_scenario_text(text: str, name: str, mesh: MeshModel) -> LoadedScenario:
    """The scenario parsed from its text and checked against ``mesh``; SpecError if invalid."""
    data, lookup = parse_text(text, name)
    provenance = Provenance(name, lookup)
    scenario = validate_data(Scenario, data, provenance)
    problems: list[Diagnostic] = []
    expectations = check(scenario, mesh, provenance, problems)
    if problems:
        raise SpecError(problems)
    return LoadedScenario(Path(name), scenario, expectations, None)


@functools.lru_cache(maxsize=8)
def load_combination(
    inputs: Inputs, overrides: tuple[str, ...]
) -> tuple[LoadedScenario, MeshModel]:
    """The scenario and the mesh with ``overrides`` applied; cached, since every seed of a
    combination that lands on one worker shares them. SpecError when invalid."""
    spec = load_spec_text(
        inputs.spec_text, display=inputs.spec_name, env=inputs.env, overrides=overrides
    )
    mesh = mesh_from_spec(spec)
    return load_scenario_text(inputs.scenario_text, inputs.scenario_name, mesh), mesh


def numeric_totals(summary: dict[str, Any]) -> dict[str, Any]:
    """``{"services": {name: {metric: number|None}}, "edges": ...}`` of a run's summary."""
    out: dict[str, Any] = {}
    for table in ("services", "edges"):
        out[table] = {
            name: {m: v for m, v in row.items() if not isinstance(v, dict)}
            for name, row in summary[table].items()
        }
    return out


def execute(task: RunTask) -> RunResult:
    """Run one task; a run that raises is a failed result (it would fail again), never lost."""
    try:
        loaded, mesh = load_combination(task.inputs, task.overrides)
        started = time.perf_counter()
        summary = run_once(loaded, mesh, task.seed)
        seconds = time.perf_counter() - started
    except Exception as error:  # a failed run is reported, with its reason, not raised
        return RunResult(
            task.combination, task.seed, False, error=f"{type(error).__name__}: {error}"
        )
    return RunResult(task.combination, task.seed, True, numeric_totals(summary), seconds=seconds)
