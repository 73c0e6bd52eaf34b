"""The scenario language: valid files load; bad ones give located errors like the spec's."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
import yaml
from simrun import SCENARIO
from support import REPO

from meshspec.sim.load import load_scenario
from meshspec.sim.schema import schema_text
from meshspec.spec import SpecError

SCENARIOS = sorted(
    p
    for p in (REPO / "scenarios").rglob("*.yaml")
    if yaml.safe_load(p.read_text()).get("kind") == "Scenario"
)


def _error(path: Path) -> SpecError:
    with pytest.raises(SpecError) as caught:
        load_scenario(path)
    return caught.value


def test_schema_file_matches_the_models() -> None:
    on_disk = (REPO / "schemas" / "scenario.schema.json").read_text(encoding="utf-8")
    regenerate = "regenerate: meshspec schema --scenario -o schemas/scenario.schema.json"
    assert on_disk == schema_text(), regenerate


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_every_shipped_scenario_loads_and_matches_the_schema(path: Path) -> None:
    loaded, mesh = load_scenario(path)
    assert loaded.scenario.name == path.stem
    assert all(t.to in mesh.services for t in loaded.scenario.traffic)
    schema = json.loads(schema_text())
    jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_values_are_lowered_to_seconds_rates_and_fractions(tiny: Path) -> None:
    loaded, mesh = load_scenario(tiny)
    scenario = loaded.scenario
    assert scenario.duration == 20.0
    assert scenario.traffic[0].rate == 100.0
    latency = scenario.behaviour["default"].latency
    assert latency is not None and latency.median == 0.005
    _, sigma = latency.lognormal() or (0.0, 0.0)
    assert sigma > 0
    assert [e.text for e in loaded.expectations] == ["front.success_rate >= 99%"]
    assert set(mesh.services) == {"front", "back"}


def _position(text: str, marker: str) -> tuple[int, int]:
    """1-based line and column of the first ``marker`` in ``text``."""
    offset = text.index(marker)
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


@pytest.mark.parametrize(
    ("old", "new", "at", "code", "words"),
    [
        ("{to: front, rate: 100/s}", "{to: frnt, rate: 100/s}", "frnt", "E0501", "unknown service"),
        ("duration: 20s", "duration: 20 seconds", "20 seconds", "E0105", "duration"),
        ("service: back, instances", "service: bak, instances", "bak", "E0501", "'bak'"),
        ("fault: crash", "fault: melt", "{at: 5s", "E0104", "crash"),
        ("front.success_rate >= 99%", "front.succes_rate >= 99%", "front.", "E0503", "metric"),
        ("front.success_rate >= 99%", "front.success_rate >= 99ms", "front.", "E0503", "ratio"),
        ("front.success_rate >= 99%", "front->nope.success_rate >= 1%", "front->", "E0501", "nope"),
        ("{at: 5s, for: 5s", "{at: 50s, for: 5s", "50s", "E0504", "after the end"),
        ("seed: 3", "seed: 3\nextra: 1", "extra", "E0100", "unknown field"),
        ("seed: 3", "seed: 3\nwarmup: 25s", "25s", "E0504", "whole run"),
        ("seed: 3", "seed: 3\nwarmup: 2500ms", "2500ms", "E0114", "whole seconds"),
        # capacity 0 divided service times by zero mid-run (a traceback)
        ("instances: 50%, fault: crash", "fault: capacity, to: 0%", "0%", "E0103", "above 0"),
        # lognormal draws overflowing a float raised OverflowError mid-run
        ("{median: 5ms, p99: 20ms}", "{mu: 1000, sigma: 50}", "{mu", "E0114", "float holds"),
        ("{median: 5ms, p99: 20ms}", "{mu: .nan, sigma: 1}", "{mu", "E0114", "float holds"),
    ],
)
def test_errors_are_located(
    write: Callable[[str, str], Path],
    tiny: Path,
    old: str,
    new: str,
    at: str,
    code: str,
    words: str,
) -> None:
    assert old in SCENARIO
    text = SCENARIO.replace(old, new)
    path = write("bad.yaml", text)
    diagnostics = _error(path).diagnostics
    assert [(d.code, d.file) for d in diagnostics] == [(code, str(path))], diagnostics
    found = diagnostics[0]
    assert words in found.message
    assert (found.line, found.column) == _position(text, at), found.format()


def test_unknown_edge_in_fan_out_is_located(write: Callable[[str, str], Path], tiny: Path) -> None:
    text = SCENARIO.replace(
        "  default: {latency: {median: 5ms, p99: 20ms}}",
        "  default: {latency: {median: 5ms, p99: 20ms}}\n  front: {calls: {front: 50%}}",
    )
    found = _error(write("bad.yaml", text)).diagnostics[0]
    assert found.code == "E0502"
    assert (found.line, found.path) == (11, "behaviour.front.calls.front")


def test_a_broken_mesh_reports_the_mesh_file(write: Callable[[str, str], Path], tiny: Path) -> None:
    (tiny.parent / "mesh.yaml").write_text("apiVersion: meshspec/v1\nmesh: {}\n")
    diagnostics = _error(tiny).diagnostics
    assert diagnostics and all(d.file.endswith("mesh.yaml") for d in diagnostics)
