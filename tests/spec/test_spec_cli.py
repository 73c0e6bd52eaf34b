"""``meshspec validate``: formats, exit codes, several files, every error in one run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from spec_support import MINIMAL, SHOP, WriteSpec

from meshspec.commands.validate import command as validate


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(validate, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_every_error_in_a_file_is_reported_in_one_run(write_spec: WriteSpec) -> None:
    text = MINIMAL.replace("port: 8080", "port: 0").replace("10.0.1.1", "10.0.1.999")
    text = text.replace("attempts: 3", "attempts: many").replace(
        "api: {}", "api: {}\n      apx: {}"
    )
    path = write_spec(text)
    status, output = _run(str(path))
    assert status == 1
    lines = output.splitlines()
    assert [line.split(": ", 2)[1] for line in lines] == [
        "error[E0101]",
        "error[E0103]",
        "error[E0200]",  # the call graph is checked beside the type errors
        "error[E0110]",
    ]
    assert lines[0].startswith(f"{path}:8:15: ")
    assert "(at services.api.instances[0].address)" in lines[3]


def test_json_format(write_spec: WriteSpec) -> None:
    bad = write_spec(MINIMAL.replace("api: {}", "apx: {}"))
    status, output = _run("--format", "json", str(SHOP), str(bad))
    assert status == 1
    report = json.loads(output)["files"]
    assert report[0] == {
        "file": str(SHOP),
        "valid": True,
        "services": 8,
        "edges": 8,
        "diagnostics": [],
    }
    (diagnostic,) = report[1]["diagnostics"]
    assert diagnostic["code"] == "E0200"
    assert (diagnostic["line"], diagnostic["column"]) == (16, 7)
    assert diagnostic["path"] == "services.web.upstreams.apx"
    assert "did you mean 'api'?" in diagnostic["message"]


def test_github_format_escapes_properties(write_spec: WriteSpec) -> None:
    bad = write_spec(MINIMAL.replace("timeout: 2s", "timeout: 2"))
    status, output = _run("--format", "github", str(bad))
    assert status == 1
    assert output.startswith(f"::error file={bad},line=6,col=12,title=E0105::expected a duration")
    assert output.rstrip().endswith("(at defaults.timeout)")


def test_unreadable_file_exits_2(tmp_path: Path) -> None:
    status, output = _run(str(tmp_path / "missing.yaml"))
    assert status == 2
    assert "error[E0001]: cannot read the file" in output


def test_unknown_environment_exits_2() -> None:
    status, output = _run(str(SHOP), "--env", "stagin")
    assert status == 2
    assert "unknown environment 'stagin'; did you mean 'staging'?" in output


def test_malformed_override_exits_2() -> None:
    status, output = _run(str(SHOP), "--set", "services.web.port")
    assert status == 2
    assert "error[E0301]" in output


def test_override_error_points_at_the_argument() -> None:
    status, output = _run(str(SHOP), "--set", "services.web.port=99999")
    assert status == 1
    assert output.startswith("--set #1:1:19: error[E0103]: expected a value at most 65535")


def test_one_valid_one_invalid_file(write_spec: WriteSpec) -> None:
    good = write_spec(MINIMAL)
    bad = write_spec(MINIMAL.replace("apiVersion: meshspec/v1", "apiVersion: v1"))
    status, output = _run(str(good), str(bad))
    assert status == 1
    assert output.splitlines()[0] == f"{good}: valid (2 services, 1 edge)"
    assert "error[E0112]" in output.splitlines()[1]


def test_installed_entry_point_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from meshspec.cli import main; main()", "validate", str(SHOP)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("valid (8 services, 8 edges)\n")


def test_semantic_errors_of_valid_services_beside_type_errors(write_spec: WriteSpec) -> None:
    text = MINIMAL.replace("port: 8081", "port: 0").replace(
        "instances: [{address: 10.0.0.1}]", "instances: [{address: 10.0.0.1}, {address: 10.0.0.1}]"
    )
    status, output = _run(str(write_spec(text)))
    assert status == 1
    codes = [line.split(": ", 2)[1] for line in output.splitlines()]
    assert codes == ["error[E0203]", "error[E0103]"]  # in file order: web, then api
