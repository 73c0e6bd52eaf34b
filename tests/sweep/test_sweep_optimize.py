"""``--optimize``: an Optuna search over the space, subject to the expectations."""

from __future__ import annotations

from pathlib import Path

from sweep_kit import GRID
from sweeprun import document, stored_runs, sweep


def test_optimize_names_the_best_passing_combination_it_tried(tiny: Path, tmp_path: Path) -> None:
    report = tmp_path / "report"
    args = [
        str(tiny), *GRID, "--seeds", "2", "-j", "2", "--report", str(report),
        "--optimize", "front->back.load_amplification", "--trials", "5",
    ]  # fmt: skip
    code, out = sweep(*args)
    assert code == 1, out
    doc = document(report)
    metric = "front->back.load_amplification"
    passing = [row for row in doc["rows"] if row["passed"]]
    assert doc["optimize"]["direction"] == "min" and doc["optimize"]["trials"] == 5
    if passing:
        best = min(passing, key=lambda row: row["metrics"][metric]["mean"])
        assert doc["optimize"]["best"]["value"] == best["metrics"][metric]["mean"]
        assert doc["optimize"]["best"]["combination"] == best["combination"]
    else:
        assert doc["optimize"]["best"] is None
    runs = len(stored_runs(report))
    assert runs == 2 * (len(doc["rows"]) + (doc["own_settings"]["values"] not in
                                               [r["values"] for r in doc["rows"]]))  # fmt: skip
    assert sweep(*args)[0] == 1  # the same search again: the same trials, from the store
    assert len(stored_runs(report)) == runs
    assert document(report)["optimize"] == doc["optimize"]
