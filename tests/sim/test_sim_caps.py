"""The simulator refuses a runaway scenario before running it, with a located error (exit 2),
and its options have sane caps; ``--report`` replaces only a previous report of its own."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from simrun import MESH, SCENARIO

from meshspec.cli import main
from meshspec.sim.caps import MAX_CALLS, MAX_CLIENTS, MAX_JOBS, MAX_RATE, MAX_SEEDS
from meshspec.sim.load import load_scenario
from meshspec.sim.report import REPORT_MARKER
from meshspec.spec import SpecError

Write = Callable[[str, str], Path]


def simulate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["simulate", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def scenario_with(write: Write, old: str, new: str) -> Path:
    assert old in SCENARIO
    write("mesh.yaml", MESH)
    return write("scenario.yaml", SCENARIO.replace(old, new))


def refused(path: Path, where: str) -> tuple[str, int, int, str]:
    """(code, line, column, message) of the one problem loading ``path`` finds at ``where``."""
    started = time.monotonic()
    with pytest.raises(SpecError) as caught:
        load_scenario(path)
    assert time.monotonic() - started < 10  # refused up front, not after a long run
    (problem,) = [d for d in caught.value.diagnostics if d.path == where]
    return problem.code, problem.line, problem.column, problem.message


def test_a_duration_of_100000h_is_refused_where_written(write: Write) -> None:
    path = scenario_with(write, "duration: 20s", "duration: 100000h")
    code, line, column, message = refused(path, "duration")
    assert (code, line, column) == ("E0103", 5, 11)
    assert "at most 86400" in message


def test_a_rate_of_a_billion_is_refused_where_written(write: Write) -> None:
    path = scenario_with(write, "rate: 100/s", "rate: 1000000000/s")
    code, line, column, message = refused(path, "traffic[0].rate")
    assert (code, line, column) == ("E0103", 8, 23)
    assert f"at most {MAX_RATE}," in message


def test_a_billion_clients_are_refused_where_written(write: Write) -> None:
    path = scenario_with(write, "rate: 100/s", "clients: 1000000000")
    code, _, _, message = refused(path, "traffic[0].clients")
    assert code == "E0103"
    assert f"at most {MAX_CLIENTS}," in message


def test_rates_and_clients_within_bounds_that_multiply_beyond_the_cap_are_refused(
    write: Write,
) -> None:
    # each number is allowed on its own; together: 12 h x 1000/s x 2 calls a request
    path = scenario_with(write, "duration: 20s", "duration: 12h")
    path.write_text(path.read_text().replace("rate: 100/s", "rate: 1000/s"))
    code, line, column, message = refused(path, "traffic[0].rate")
    assert (code, line, column) == ("E0506", 8, 23)
    assert "about 86,400,000 calls" in message
    assert f"{MAX_CALLS:,}" in message


def test_closed_loop_clients_are_estimated_from_their_cycle(write: Write) -> None:
    # 100000 clients with no think time, 5 ms services, for an hour: far beyond the cap
    path = scenario_with(write, "duration: 20s", "duration: 1h")
    path.write_text(path.read_text().replace("rate: 100/s", f"clients: {MAX_CLIENTS}"))
    code, _, _, message = refused(path, "traffic[0].clients")
    assert code == "E0506"
    assert "lower the clients" in message


def test_a_long_run_is_refused_for_its_counters(write: Write) -> None:
    # a 24 h run of a mesh of many services keeps too many per-second counters
    services = "".join(
        f"  s{i}:\n    port: {9000 + i}\n    instances: [{{address: 10.0.2.{i + 1}}}]\n"
        for i in range(80)
    )
    write("mesh.yaml", MESH + services)
    path = write("scenario.yaml", SCENARIO.replace("duration: 20s", "duration: 24h"))
    path.write_text(path.read_text().replace("rate: 100/s", "rate: 1/s"))
    code, line, _, message = refused(path, "duration")
    assert (code, line) == ("E0506", 5)
    assert "per-second counters" in message


def test_the_cli_refuses_a_runaway_scenario_with_exit_2(write: Write) -> None:
    path = scenario_with(write, "duration: 20s", "duration: 100000h")
    code, out = simulate(str(path))
    assert code == 2
    assert f"{path}:5:11: error[E0103]" in out
    assert "Traceback" not in out


@pytest.mark.parametrize(
    ("option", "value"),
    [("--seeds", str(MAX_SEEDS + 1)), ("--jobs", str(MAX_JOBS + 1)), ("--jobs", "0")],
)
def test_seeds_and_jobs_are_capped(tiny: Path, option: str, value: str) -> None:
    code, out = simulate(str(tiny), option, value)
    assert code == 2
    assert option in out
    assert "PASS" not in out


# --- --report ------------------------------------------------------------------------------


def test_an_unrelated_folder_is_refused_and_left_untouched(tiny: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    code, out = simulate(str(tiny), "--report", str(folder))
    assert code == 2
    assert "is not a meshspec report" in out
    assert "PASS" not in out  # refused before the simulation ran
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.tex"]
    assert (folder / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["mine", "mesh.yaml", "scenario.yaml"]
    )


def test_a_previous_report_is_replaced(tiny: Path, tmp_path: Path) -> None:
    folder = tmp_path / "report"
    assert simulate(str(tiny), "--report", str(folder))[0] == 0
    assert (folder / REPORT_MARKER).is_file()
    (folder / "stale.txt").write_text("from an older report")
    assert simulate(str(tiny), "--report", str(folder))[0] == 0
    assert (folder / "report.json").is_file() and not (folder / "stale.txt").exists()
    # nothing left beside it (staging or the old report)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mesh.yaml", "report", "scenario.yaml"]


def test_an_empty_folder_is_used(tiny: Path, tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    assert simulate(str(tiny), "--report", str(folder))[0] == 0
    assert (folder / "report.html").is_file()


def test_report_folders_get_the_usual_mode(tiny: Path, tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        folder = tmp_path / "new" / "report"
        assert simulate(str(tiny), "--report", str(folder))[0] == 0
    finally:
        os.umask(previous)
    for path in (folder, folder / "plots", folder.parent):
        assert stat.S_IMODE(path.stat().st_mode) == 0o755, path
