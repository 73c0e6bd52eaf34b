"""``meshspec simulate``: exit codes, summary, reports, seeds, parallel runs and comparison."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from simrun import MESH

from meshspec.cli import main
from meshspec.sim.report import SERVICE_COLUMNS


def _simulate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["simulate", *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_passing_expectations_exit_0_and_print_pass_lines(tiny: Path) -> None:
    code, out = _simulate(str(tiny))
    assert code == 0, out
    assert "PASS front.success_rate >= 99%  measured" in out
    assert "front->back" in out


def test_a_failing_expectation_exits_1(write: Callable[[str, str], Path], tiny: Path) -> None:
    text = tiny.read_text().replace("front.success_rate >= 99%", "front.success_rate >= 100%")
    text += "  - front->back.load_amplification <= 1.0x\n"
    code, out = _simulate(str(write("strict.yaml", text)))
    assert code == 1
    assert "FAIL front->back.load_amplification <= 1.0x  measured" in out


def test_invalid_scenario_exits_2_with_a_located_error(
    write: Callable[[str, str], Path], tiny: Path
) -> None:
    bad = write("bad.yaml", tiny.read_text().replace("to: front", "to: nowhere"))
    code, out = _simulate(str(bad))
    assert code == 2
    assert f"{bad}:8:" in out and "error[E0501]" in out and "Traceback" not in out


def test_spec_on_the_command_line_replaces_the_scenarios_mesh(
    write: Callable[[str, str], Path], tiny: Path
) -> None:
    other = write("other.yaml", MESH.replace("name: tiny", "name: other"))
    code, out = _simulate(str(other), str(tiny), "--json")
    assert code == 0
    assert json.loads(out)["mesh"] == "other"


def test_same_seed_gives_a_byte_identical_report(tiny: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert _simulate(str(tiny), "--report", str(tmp_path / name))[0] == 0
    first = (tmp_path / "a" / "report.json").read_bytes()
    assert first == (tmp_path / "b" / "report.json").read_bytes()
    _simulate(str(tiny), "--seed", "4", "--report", str(tmp_path / "c"))
    assert first != (tmp_path / "c" / "report.json").read_bytes()
    html = (tmp_path / "a" / "report.html").read_text()
    assert "data:image/png;base64," in html and "PASS" in html
    assert (tmp_path / "a" / "plots" / "front.png").read_bytes()[:4] == b"\x89PNG"


def test_seeds_in_parallel_report_means_with_confidence_intervals(tiny: Path) -> None:
    code, out = _simulate(str(tiny), "--seeds", "3", "--jobs", "2", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["seeds"] == [3, 4, 5]
    cell = report["aggregate"]["edges"]["front->back"]["load_amplification"]
    low, high = cell["ci95"]
    assert low <= cell["mean"] <= high and low < high
    verdict = report["expectations"][0]
    assert verdict["passed"] and verdict["ci95"] is not None
    # The same seeds one by one give the same means (parallel runs are the same runs).
    serial = json.loads(_simulate(str(tiny), "--seeds", "3", "--json")[1])
    assert serial["aggregate"] == report["aggregate"]


def test_compare_runs_both_specs_and_shows_deltas(
    write: Callable[[str, str], Path], tiny: Path
) -> None:
    no_retry = write(
        "no-retry.yaml",
        MESH.replace(
            "retry: {attempts: 3, per_try_timeout: 500ms, backoff: {base: 10ms, max: 100ms}}",
            "retry: off",
        ),
    )
    code, out = _simulate(str(tiny), "--compare", str(no_retry), "--json")
    assert code == 0
    report = json.loads(out)
    row = report["compare"]["edges"]["front->back"]
    assert row["load_amplification"]["delta"] < 0  # fewer attempts without retries
    assert row["success_rate"]["delta"] < 0  # and more failures
    code, out = _simulate(str(tiny), "--compare", str(no_retry))
    assert "compare: candidate - baseline" in out


def test_compare_deltas_and_the_seeds_read_as_a_person_writes_them(
    write: Callable[[str, str], Path], tiny: Path, tmp_path: Path
) -> None:
    # the baseline's breaker opens for seconds while back is half down; the candidate has none
    write(
        "mesh.yaml",
        MESH.replace(
            "circuit_breaker: off",
            "circuit_breaker: {failure_rate: 20%, minimum_calls: 10, "
            "window: {kind: count, size: 20}, open_for: 2s}",
        ),
    )
    no_breaker = write("no-breaker.yaml", MESH)
    args = [str(tiny), "--compare", str(no_breaker), "--seed", "11", "--seeds", "2"]
    code, out = _simulate(*args, "--json")
    assert code == 1  # the scenario's front.success_rate >= 99% fails with the breaker
    delta = json.loads(out)["compare"]["services"]["back"]["breaker_open_time"]["delta"]
    assert delta <= -1  # seconds: the case printed as -2.5e+03ms before
    code, out = _simulate(*args, "--report", str(tmp_path / "report"))
    assert code == 1
    assert "2 seeds (11-12), mean ±95% CI" in out
    compare = out[out.index("compare: candidate - baseline") :]
    back = next(line for line in compare.splitlines() if line.startswith("│ back "))
    cells = [cell.strip() for cell in back.strip("│").split("│")]
    breaker_open = cells[1 + list(SERVICE_COLUMNS).index("breaker_open_time")]
    assert re.fullmatch(r"-[0-9]+(\.[0-9]+)?s", breaker_open), back
    assert float(breaker_open[:-1]) == pytest.approx(delta, rel=5e-3)
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "20s simulated, 2 seeds (11-12).</p>" in html
