"""Bad input is a located error (exit 2) before anything runs; the ``--vary`` grammar."""

from __future__ import annotations

from pathlib import Path

import pytest
from sweep_kit import GRID
from sweeprun import sweep

from meshspec.sweep.space import VaryError, grid, parse_vary


def test_a_path_to_an_unknown_service_is_located_in_its_vary(tiny: Path) -> None:
    code, out = sweep(str(tiny), "--vary", "services.frnt.upstreams.back.timeout=1s,2s")
    assert code == 2
    assert "--vary #1:1:10: error[E0600]: services.frnt: no service 'frnt' in the spec; " in out
    assert "did you mean 'front'?" in out and "Traceback" not in out


def test_an_unknown_field_and_a_refused_value_point_at_the_value(
    tiny: Path, tmp_path: Path
) -> None:
    code, out = sweep(
        str(tiny),
        "--vary", "defaults.retry.attemps=2",
        "--vary", "defaults.retry.attempts=1,0,3",
        "--report", str(tmp_path / "report"),
    )  # fmt: skip
    assert code == 2
    lines = out.splitlines()
    assert (
        "--vary #1:1:24: error[E0100]: value '2': unknown field 'attemps'; did you mean "
        in lines[0]
    )
    assert lines[1].startswith(
        "--vary #2:1:27: error[E0103]: value '0': expected a value at least 1, found 0"
    )
    assert not (tmp_path / "report" / "runs.jsonl").exists()  # nothing ran


def test_values_refused_together_are_reported_before_anything_runs(tiny: Path) -> None:
    code, out = sweep(
        str(tiny),
        "--vary", "defaults.retry.backoff.base=10ms,50ms",
        "--vary", "defaults.retry.backoff.max=20ms,1s",
    )  # fmt: skip
    assert code == 2
    assert "error[E0601]: the combination defaults.retry.backoff.base=50ms, " in out
    assert "defaults.retry.backoff.max=20ms is refused" in out


def test_more_runs_than_the_cap_asks_for_max_runs(tiny: Path) -> None:
    code, out = sweep(str(tiny), *GRID, "--seeds", "1200")
    assert code == 2
    assert "9 combinations x 1200 seeds = 10800 runs, more than the cap of 10000" in out
    assert "--max-runs 10800" in out


def test_results_of_another_spec_are_not_mixed_in(tiny: Path, tmp_path: Path) -> None:
    report = tmp_path / "report"
    assert sweep(str(tiny), "--seeds", "1", "--report", str(report))[0] == 1
    mesh = tiny.parent / "mesh.yaml"
    mesh.write_text(mesh.read_text().replace("attempts: 2", "attempts: 3"))
    code, out = sweep(str(tiny), "--seeds", "1", "--report", str(report))
    assert code == 2 and "holds results of a different spec" in out and "--fresh" in out
    code, _ = sweep(str(tiny), "--seeds", "1", "--report", str(report), "--fresh")
    assert code in (0, 1)


def test_an_unknown_metric_is_a_usage_error(tiny: Path) -> None:
    code, out = sweep(str(tiny), "--metric", "front.succes_rate")
    assert code == 2 and "unknown service metric 'succes_rate'" in out


def test_values_split_at_top_level_commas_and_ranges_expand() -> None:
    axis = parse_vary(1, "defaults.retry.on=[503, 5xx], [timeout],1..3")
    assert [v.text for v in axis.values] == ["[503, 5xx]", "[timeout]", "1", "2", "3"]
    assert [v.column for v in axis.values][:2] == [19, 31]
    with pytest.raises(VaryError, match="listed twice"):
        parse_vary(1, "a.b=1,2,1")
    with pytest.raises(VaryError, match="empty value"):
        parse_vary(1, "a.b=1,,2")
    with pytest.raises(VaryError, match="expected PATH=V1,V2"):
        parse_vary(1, "a.b")


def test_the_grid_varies_the_last_axis_fastest() -> None:
    axes = [parse_vary(1, "a.x=1,2"), parse_vary(2, "a.y=p,q,r")]
    points = grid(axes)
    assert [p.indexes for p in points] == [(i, j) for i in range(2) for j in range(3)]
    assert points[1].overrides == ("a.x=1", "a.y=q")
    assert len({p.key for p in points}) == 6


def test_an_alert_expectation_is_refused_before_anything_runs(tiny: Path) -> None:
    text = tiny.read_text().replace(
        "  - front.success_rate >= 97%\n",
        "  - front.success_rate >= 97%\n"
        "  - alert(MeshspecUpstreamErrorRatioHigh, front->back) does not fire\n",
    )
    tiny.write_text(text)
    code, out = sweep(str(tiny), *GRID)
    assert code == 2
    assert "error[E0602]" in out and "run alert expectations with meshspec simulate" in out
    assert "Traceback" not in out
