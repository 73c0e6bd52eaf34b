"""Everything a sweep checks before it runs: the inputs load, every ``--vary`` path names
something in the spec, every value is accepted, and every combination validates.

Problems come back as located diagnostics (``--vary #2:1:34: error[E0103]: ...``), all of
them at once, so a sweep never starts on input that would fail half-way through.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshspec.sim.expect import AlertExpectation
from meshspec.sim.load import read_scenario
from meshspec.sim.mesh import mesh_from_spec
from meshspec.spec.diagnostics import Diagnostic, SpecError
from meshspec.spec.document import Provenance
from meshspec.spec.loader import load_spec_text
from meshspec.spec.merge import apply_environment, parse_override
from meshspec.spec.models import MeshSpec
from meshspec.spec.yamlio import parse_text, read_text
from meshspec.sweep.space import (
    Axis,
    Combination,
    Value,
    VaryError,
    combination,
    grid,
    grid_size,
    labelled,
    parse_vary,
)
from meshspec.sweep.work import Inputs, load_scenario_text

E_VARY = "E0600"
E_ALERT_IN_SWEEP = "E0602"
"""A malformed ``--vary`` (syntax, unknown service or upstream)."""
E_COMBINATION = "E0601"
"""Values that are accepted alone but not together."""

MAX_CHECKED_COMBINATIONS = 2_000
"""Grids up to this size have every combination validated up front (about 5 ms each); in a
larger one, a combination the spec refuses fails its runs, with the reason, when it runs."""

MAX_REPORTED_VALUES = 3
"""Refused values reported per axis (a range can hold thousands)."""

NAMED_MAPPINGS = ("services", "upstreams")
"""Mappings whose keys the user names: a path must pick an existing one (a typo there would
otherwise declare a new, incomplete service)."""


@dataclass(frozen=True)
class Plan:
    inputs: Inputs
    axes: tuple[Axis, ...]
    baseline: tuple[int | None, ...]
    """Per axis, the index of the spec's own value (None: the spec's value is not listed)."""
    expectations: tuple[str, ...]
    scenario_name: str
    mesh_name: str
    first_seed: int
    duration: float

    @property
    def baseline_combination(self) -> Combination | None:
        """The grid point that is the spec itself, when every axis lists the spec's value."""
        if any(i is None for i in self.baseline):
            return None
        return combination(self.axes, [i for i in self.baseline if i is not None])


def read_inputs(spec: Path | None, scenario: Path, env: str | None) -> Inputs:
    """The texts of both files (SpecError when unreadable); SPEC defaults to the scenario's
    ``mesh:``."""
    parsed, _ = read_scenario(scenario)
    if spec is None:
        if parsed.mesh is None:
            raise SpecError(
                [
                    Diagnostic(
                        str(scenario),
                        0,
                        0,
                        "E0505",
                        "",
                        "no mesh: name one with 'mesh:' or give SPEC on the command line",
                    )
                ]
            )
        spec = scenario.parent / parsed.mesh
    return Inputs(
        read_text(spec, str(spec)),
        str(spec),
        read_text(scenario, str(scenario)),
        str(scenario),
        env if env is not None else parsed.env,
    )


def make_plan(inputs: Inputs, varies: Sequence[str]) -> Plan:
    """Check everything; SpecError with every problem found."""
    base = load_spec_text(inputs.spec_text, display=inputs.spec_name, env=inputs.env)
    loaded = load_scenario_text(inputs.scenario_text, inputs.scenario_name, mesh_from_spec(base))
    axes, problems = _parse_axes(varies)
    document = _document(inputs)
    baseline: list[int | None] = []
    for axis in axes:
        wrong_path = _check_path(axis, document)
        index, found = (None, wrong_path) if wrong_path else _check_values(inputs, base, axis)
        baseline.append(index)
        problems += found
    if problems:
        raise SpecError(problems)
    if len(axes) > 1 and grid_size(axes) <= MAX_CHECKED_COMBINATIONS:
        problems += _check_combinations(inputs, axes)
        if problems:
            raise SpecError(problems)
    alerts = [e for e in loaded.expectations if isinstance(e, AlertExpectation)]
    if alerts:  # their verdict needs promtool over every run's series: not in a sweep yet
        raise SpecError(
            [
                Diagnostic(
                    inputs.scenario_name,
                    0,
                    0,
                    E_ALERT_IN_SWEEP,
                    "expect",
                    f"{alert.text!r}: a sweep judges metric expectations only; run alert "
                    "expectations with meshspec simulate",
                )
                for alert in alerts
            ]
        )
    scenario = loaded.scenario
    return Plan(
        inputs,
        tuple(axes),
        tuple(baseline),
        tuple(e.text for e in loaded.expectations),
        scenario.name,
        base.mesh.name,
        scenario.seed,
        scenario.duration,
    )


def _parse_axes(varies: Sequence[str]) -> tuple[list[Axis], list[Diagnostic]]:
    axes: list[Axis] = []
    problems: list[Diagnostic] = []
    paths: dict[str, int] = {}
    for number, text in enumerate(varies, start=1):
        where = f"--vary #{number}"
        try:
            axis = parse_vary(number, text)
            parse_override(f"{axis.path}=0")  # the path's syntax, as --set checks it
        except VaryError as error:
            problems.append(Diagnostic(where, 1, error.column, E_VARY, "", f"{text!r}: {error}"))
            continue
        except ValueError as error:
            problems.append(Diagnostic(where, 1, 1, E_VARY, "", f"{text!r}: {error}"))
            continue
        if axis.path in paths:
            problems.append(
                Diagnostic(
                    where,
                    1,
                    1,
                    E_VARY,
                    axis.path,
                    f"the path is varied twice (also by --vary #{paths[axis.path]})",
                )
            )
            continue
        paths[axis.path] = number
        axes.append(axis)
    return labelled(axes), problems


def _document(inputs: Inputs) -> dict[str, Any]:
    data, lookup = parse_text(inputs.spec_text, inputs.spec_name)
    if inputs.env is not None and isinstance(data, dict):
        data = apply_environment(data, inputs.env, Provenance(inputs.spec_name, lookup))
    return data if isinstance(data, dict) else {}


def _check_path(axis: Axis, document: dict[str, Any]) -> list[Diagnostic]:
    """A service or upstream the path names must exist; field names are the models' to check
    (with each value, below), since a field that is only inherited may still be set."""
    parts, _, _ = parse_override(f"{axis.path}=0")
    node: Any = document
    for index, part in enumerate(parts):
        parent = parts[index - 1] if index else None
        if isinstance(node, dict) and part in node:
            node = node[part]
            continue
        if isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            continue
        shown = ".".join(str(p) for p in parts[: index + 1])
        if isinstance(node, list):
            message = f"{shown}: no item {part} (the list has {len(node)})"
        elif isinstance(node, dict) and parent in NAMED_MAPPINGS:
            names = sorted(str(k) for k in node)
            close = difflib.get_close_matches(str(part), names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            what = "service" if parent == "services" else "upstream"
            message = f"{shown}: no {what} {part!r} in the spec{hint} (it has: {', '.join(names)})"
        else:
            return []
        column = len(".".join(str(p) for p in parts[:index])) + (2 if index else 1)
        return [Diagnostic(axis.where, 1, column, E_VARY, axis.path, message)]
    return []


def _check_values(
    inputs: Inputs, base: MeshSpec, axis: Axis
) -> tuple[int | None, list[Diagnostic]]:
    """Validate each value alone; the index of the one that leaves the spec unchanged."""
    baseline: int | None = None
    problems: list[Diagnostic] = []
    refused = 0
    # by value: == on the models also compares which fields were written out
    own = base.model_dump()
    for index, value in enumerate(axis.values):
        try:
            spec = load_spec_text(
                inputs.spec_text,
                display=inputs.spec_name,
                env=inputs.env,
                overrides=[f"{axis.path}={value.text}"],
            )
        except SpecError as error:
            refused += 1
            if refused <= MAX_REPORTED_VALUES:
                problems += [_relocate(d, axis, value) for d in error.diagnostics]
            continue
        if baseline is None and spec.model_dump() == own:
            baseline = index
    if refused > MAX_REPORTED_VALUES:
        more = refused - MAX_REPORTED_VALUES
        problems.append(
            Diagnostic(axis.where, 1, 1, E_VARY, axis.path, f"and {more} more values are refused")
        )
    return baseline, problems


def _relocate(diagnostic: Diagnostic, axis: Axis, value: Value) -> Diagnostic:
    """A ``--set #1`` diagnostic of ``PATH=VALUE`` -> the value's place in the ``--vary``."""
    if diagnostic.file != "--set #1":
        return diagnostic
    shift = value.column - (len(axis.path) + 2)
    return Diagnostic(
        axis.where,
        1,
        diagnostic.column + shift,
        diagnostic.code,
        diagnostic.path,
        f"value {value.text!r}: {diagnostic.message}",
        diagnostic.severity,
    )


def _check_combinations(inputs: Inputs, axes: Sequence[Axis]) -> list[Diagnostic]:
    problems: list[Diagnostic] = []
    for point in grid(axes):
        try:
            load_spec_text(
                inputs.spec_text,
                display=inputs.spec_name,
                env=inputs.env,
                overrides=point.overrides,
            )
        except SpecError as error:
            shown = ", ".join(point.overrides)
            first = error.diagnostics[0]
            problems.append(
                Diagnostic(
                    "--vary",
                    0,
                    0,
                    E_COMBINATION,
                    first.path,
                    f"the combination {shown} is refused: {first.message}",
                )
            )
            if len(problems) >= 10:
                break
    return problems
