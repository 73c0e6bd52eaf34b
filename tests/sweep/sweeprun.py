"""Running ``meshspec sweep`` from tests, in-process or as a subprocess."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from meshspec.cli import main


def sweep(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["sweep", *args], catch_exceptions=False)
    return result.exit_code, result.output


def document(report: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((report / "sweep.json").read_text(encoding="utf-8"))
    return data


def stored_runs(report: Path) -> list[dict[str, Any]]:
    """Every result line of runs.jsonl (the header skipped)."""
    lines = (report / "runs.jsonl").read_text(encoding="utf-8").splitlines()[1:]
    return [json.loads(line) for line in lines if line]


def numbers(run: dict[str, Any]) -> tuple[str, int, bool, Any]:
    """A stored run without its wall-clock time (the only field that may differ)."""
    return run["combination"], run["seed"], run["ok"], run["totals"]
