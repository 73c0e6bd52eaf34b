"""``meshspec sweep`` on the local engine: the table, the exit code, the nearest passing
combination, the report and its heat maps."""

from __future__ import annotations

import json
from pathlib import Path

from sweep_kit import GRID
from sweeprun import document, numbers, stored_runs, sweep

from meshspec.sim.load import load_scenario
from meshspec.sim.mesh import mesh_from_spec
from meshspec.sim.runner import run_once
from meshspec.spec import load_spec


def test_a_3x3_grid_with_3_seeds_runs_every_combination_with_every_seed(
    tiny: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report"
    code, out = sweep(str(tiny), *GRID, "--seeds", "3", "-j", "2", "--report", str(report))
    assert code == 1, out  # the spec's own settings (2 attempts, 20%) fail
    doc = document(report)
    assert [row["values"] for row in doc["rows"]] == [
        [a, r] for a in ("2", "3", "4") for r in ("5%", "20%", "100%")
    ]
    assert all(row["seeds"] == 3 and row["failed_runs"] == 0 for row in doc["rows"])
    runs = stored_runs(report)
    assert len(runs) == 27  # the own settings are a grid point: not run twice
    assert {(r["combination"], r["seed"]) for r in runs} == {
        (json.dumps([f"defaults.retry.attempts={a}", f"defaults.retry.budget.ratio={r}"],
                    separators=(",", ":")), s)
        for a in ("2", "3", "4") for r in ("5%", "20%", "100%") for s in (3, 4, 5)
    }  # fmt: skip
    assert doc["own_settings"]["values"] == ["2", "20%"]
    assert doc["own_settings"]["passed"] is False
    passing = [row["values"] for row in doc["rows"] if row["passed"]]
    assert ["3", "100%"] in passing and ["2", "5%"] not in passing
    assert doc["nearest_passing"] == [
        "defaults.retry.attempts=3",
        "defaults.retry.budget.ratio=100%",
    ]
    assert "nearest passing combination: defaults.retry.attempts=3, " in out
    assert (report / "all-expectations.png").read_bytes()[:4] == b"\x89PNG"
    assert "nearest passing combination" in (report / "report.html").read_text()


def test_numbers_are_those_of_the_simulator_with_the_same_overrides(
    tiny: Path, tmp_path: Path
) -> None:
    """A cell of the table is the simulator's own result for that combination and seed."""
    report = tmp_path / "report"
    sweep(str(tiny), *GRID, "--seeds", "2", "--report", str(report))
    overrides = ["defaults.retry.attempts=4", "defaults.retry.budget.ratio=5%"]
    mesh = mesh_from_spec(load_spec(tiny.parent / "mesh.yaml", overrides=overrides))
    loaded, _ = load_scenario(tiny, mesh)
    expected = [run_once(loaded, mesh, seed)["services"]["front"] for seed in (3, 4)]
    stored = {
        r["seed"]: r["totals"]["services"]["front"]
        for r in stored_runs(report)
        if r["combination"] == json.dumps(overrides, separators=(",", ":"))
    }
    for seed, summary in zip((3, 4), expected, strict=True):
        assert stored[seed]["success_rate"] == summary["success_rate"]
        assert stored[seed]["requests"] == summary["requests"]
    row = next(r for r in document(report)["rows"] if r["values"] == ["4", "5%"])
    mean = row["metrics"]["front.success_rate"]["mean"]
    assert abs(mean - (expected[0]["success_rate"] + expected[1]["success_rate"]) / 2) < 1e-6


def test_exit_0_when_the_specs_own_settings_pass(tiny: Path, tmp_path: Path) -> None:
    mesh = tiny.parent / "mesh.yaml"
    mesh.write_text(
        mesh.read_text().replace("attempts: 2", "attempts: 4").replace("ratio: 20%", "ratio: 100%")
    )
    code, out = sweep(str(tiny), *GRID, "--seeds", "3", "-j", "2", "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["own_settings"]["values"] == ["4", "100%"] and doc["own_settings"]["passed"]


def test_own_settings_outside_the_grid_run_too(tiny: Path, tmp_path: Path) -> None:
    report = tmp_path / "report"
    code, _ = sweep(
        str(tiny), "--vary", "defaults.retry.attempts=3,4", "--vary",
        "defaults.retry.budget.ratio=100%", "--seeds", "2", "--report", str(report),
    )  # fmt: skip
    assert code == 1
    doc = document(report)
    assert len(doc["rows"]) == 2 and all(row["passed"] for row in doc["rows"])
    assert doc["own_settings"]["combination"] == [] and doc["own_settings"]["seeds"] == 2
    assert len(stored_runs(report)) == 3 * 2
    assert doc["nearest_passing"] == [
        "defaults.retry.attempts=3",
        "defaults.retry.budget.ratio=100%",
    ]


def test_a_second_sweep_with_a_larger_grid_runs_only_what_is_new(
    tiny: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report"
    sweep(
        str(tiny), "--vary", "defaults.retry.attempts=2,3", "--seeds", "2", "--report", str(report)
    )
    first = [numbers(r) for r in stored_runs(report)]
    code, out = sweep(
        str(tiny),
        "--vary",
        "defaults.retry.attempts=2,3,4",
        "--seeds",
        "2",
        "--report",
        str(report),
    )
    assert code == 1, out
    runs = [numbers(r) for r in stored_runs(report)]
    assert runs[: len(first)] == first
    assert len(runs) == len(first) + 2  # only attempts=4's two seeds
