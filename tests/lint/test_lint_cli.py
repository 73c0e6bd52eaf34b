"""``meshspec lint`` as a user runs it: the flagged example, exit codes, formats, settings."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from support import REPO

from meshspec.cli import main
from meshspec.lint import CODES

FLAGGED = "examples/lint/flagged.yaml"


def _lint(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["lint", *args])
    return result.exit_code, result.output


@pytest.fixture(autouse=True)
def _at_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)


def test_flagged_example_prints_its_expected_output() -> None:
    status, output = _lint(FLAGGED)
    assert status == 0
    assert output == (REPO / "examples" / "lint" / "flagged.txt").read_text()


def test_flagged_example_shows_every_code_once_with_its_location() -> None:
    _, output = _lint(FLAGGED)
    lines = output.splitlines()[:-1]
    codes = [re.search(r"warning\[(W\d{4})\]", line).group(1) for line in lines]  # type: ignore[union-attr]
    assert sorted(codes) == sorted(CODES)
    for line in lines:
        assert re.match(rf"{re.escape(FLAGGED)}:\d+:\d+: warning\[W\d{{4}}\]: .+ \(at \S+\)$", line)
    assert output.splitlines()[-1] == f"{FLAGGED}: {len(CODES)} warnings (1 suppressed)"


def test_deny_turns_warnings_into_exit_1() -> None:
    assert _lint(FLAGGED, "--deny", "all")[0] == 1
    assert _lint(FLAGGED, "--deny", "W0303")[0] == 1
    status, output = _lint(FLAGGED, "--deny", "W0303", "--ignore", "W0303")
    assert status == 0
    assert "W0303" not in output


def test_shop_lints_clean_in_every_environment() -> None:
    for env in (None, "prod", "staging"):
        args = ["examples/shop.yaml", "--deny", "all"] + (["--env", env] if env else [])
        status, output = _lint(*args)
        assert status == 0, output
        assert "no warnings (1 suppressed)" in output


def test_bad_input_exits_2_with_located_errors() -> None:
    status, output = _lint(FLAGGED, "--env", "qa")
    assert status == 2
    assert "unknown environment 'qa'" in output
    status, output = _lint(FLAGGED, "--set", "services.api.port=http")
    assert status == 2
    assert re.search(r"^--set #1:1:\d+: error\[E0101\]", output, re.M), output
    status, output = _lint(FLAGGED, "--deny", "W0109")
    assert status == 2
    assert "did you mean W0101?" in output
    status, output = _lint("examples/lint/missing.yaml")
    assert status == 2


def test_a_suppression_needs_a_reason() -> None:
    status, output = _lint(FLAGGED, "--set", "services.stock.upstreams.db.lint.suppress.W0101=' '")
    assert status == 2
    assert "lint.suppress.W0101" in output


def test_threshold_from_the_spec_and_the_command_line() -> None:
    assert "W0101" in _lint(FLAGGED)[1]
    assert "W0101" not in _lint(FLAGGED, "--set", "lint.max_amplification=16")[1]
    assert "W0101" not in _lint(FLAGGED, "--max-amplification", "16")[1]
    output = _lint(FLAGGED, "--set", "lint.max_amplification=16", "--max-amplification", "15")[1]
    assert "above the threshold of 15x" in output


def test_json_and_github_formats() -> None:
    status, output = _lint(FLAGGED, "--format", "json", "--deny", "W0101")
    assert status == 1
    document = json.loads(output)
    assert {w["code"] for w in document["warnings"]} == set(CODES)
    assert [w["denied"] for w in document["warnings"] if w["code"] == "W0101"] == [True]
    assert document["amplification"]["db"]["factor"] == 64
    assert document["amplification"]["db"]["path"] == ["api", "orders", "stock", "db"]
    _, output = _lint(FLAGGED, "--format", "github")
    assert len(output.splitlines()) == len(CODES)
    assert all(line.startswith("::warning file=") for line in output.splitlines())


def test_a_value_set_by_an_overlay_is_reported_where_it_was_written() -> None:
    status, output = _lint(
        FLAGGED,
        "--set",
        "services.stock.upstreams.db.circuit_breaker={consecutive_failures: 2, mode: consecutive}",
    )
    assert status == 0
    assert re.search(
        r"^--set #1:1:\d+: warning\[W0303\]: the breaker opens on 2 failed calls", output, re.M
    ), output
