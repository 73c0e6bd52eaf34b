"""The report explains: a timeline of disturbances and breaker transitions, per-second
retries, timeouts and refusals."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner
from simrun import MESH, SCENARIO, run

from meshspec.commands.simulate import command as simulate

BREAKER = (
    "circuit_breaker: {mode: consecutive, consecutive_failures: 3, open_for: 2s,"
    " half_open_calls: 1}"
)


def _mesh() -> str:
    return MESH.replace("circuit_breaker: off", BREAKER).replace(
        "health_check: {http: /healthz, interval: 2s, timeout: 1s}", "health_check: off"
    )


def test_the_timeline_lists_the_fault_and_breaker_transitions(
    write: Callable[[str, str], Path],
) -> None:
    write("mesh.yaml", _mesh())
    text = SCENARIO.replace("instances: 50%, fault: crash", "fault: crash")
    summary = run(write("scenario.yaml", text))
    events = summary["timeline"]
    assert events == sorted(events, key=lambda e: e["t"])
    texts = [(e["subject"], e["event"]) for e in events]
    assert ("back", "crash@5s starts (crash)") in texts
    assert ("back", "crash@5s ends") in texts
    opened = [e for e in events if e["subject"] == "front->back" and "-> open" in e["event"]]
    assert opened and 5 <= opened[0]["t"] < 6
    series = summary["series"]["edges"]["front->back"]
    assert sum(series["refusals"][5:10]) > 0  # breaker_open while back is down
    assert sum(series["retries"][5:10]) > 0
    assert sum(series["refusals"][:5]) == 0


def test_report_html_has_the_timeline(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    write("mesh.yaml", _mesh())
    path = write("scenario.yaml", SCENARIO)
    out = tmp_path / "report"
    result = CliRunner().invoke(simulate, [str(path), "--report", str(out), "--seeds", "2"])
    assert result.exit_code in (0, 1), result.output
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<h2>Timeline</h2>" in html and "crash@5s starts" in html
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["run"]["timeline"] and "latency_mean" in report["aggregate"]["services"]["front"]
