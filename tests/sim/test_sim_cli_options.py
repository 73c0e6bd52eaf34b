"""``meshspec simulate`` refuses options it cannot honour before it runs anything: a report
folder it cannot make, a number of seeds that is a typo. Exit 2, one line, no traceback."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from meshspec.cli import main


def _simulate(*args: str) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(main, ["simulate", *args])
    exception = None if isinstance(result.exception, SystemExit) else result.exception
    return result.exit_code, result.output, exception


def test_a_report_folder_under_a_file_is_refused(tiny: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("")
    code, out, exception = _simulate(str(tiny), "--report", str(blocker / "report"))
    assert exception is None
    assert code == 2
    assert f"--report {blocker / 'report'}:" in out
    assert "PASS" not in out  # refused before the simulation ran


def test_too_many_seeds_is_a_usage_error(tiny: Path) -> None:
    code, out, exception = _simulate(str(tiny), "--seeds", "99999999999999999999")
    assert exception is None
    assert code == 2
    assert "--seeds" in out
