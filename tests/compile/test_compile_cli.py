"""``meshspec compile`` as CI runs it: summary, exit statuses, located errors."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from click.testing import CliRunner
from meshspec_runtime.loader import load_bundle
from support import REPO

from meshspec.cli import main

SHOP = REPO / "examples" / "shop.yaml"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_compile_prints_version_destination_and_file_count(tmp_path: Path) -> None:
    out = tmp_path / "build" / "shop"
    code, stdout, _ = run("compile", str(SHOP), "-o", str(out))
    assert code == 0
    version = load_bundle(out).version
    files = sum(1 for p in (out / "current").rglob("*") if p.is_file())
    assert stdout.strip() == (
        f"bundle {version} (new version) written to {out}: {files} files, DNS serial 1"
    )
    code, stdout, _ = run("compile", str(SHOP), "-o", str(out))
    assert code == 0 and f"bundle {version} (unchanged)" in stdout


def test_env_and_set_shape_the_bundle(tmp_path: Path) -> None:
    out = tmp_path / "b"
    code, _, _ = run(
        "compile", str(SHOP), "--env", "prod", "--set", "services.web.port=8088", "-o", str(out)
    )
    assert code == 0
    policy = load_bundle(out).policy
    assert policy.services["web"].port == 8088
    assert len(policy.service("checkout").upstreams["payments"].endpoints) == 3


def test_spec_errors_are_located_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "shop.yaml"
    text = SHOP.read_text().replace("retry: {attempts: 2}", "retry: {attempts: many}")
    bad.write_text(text)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "attempts: many" in row)
    out = tmp_path / "out"
    code, stdout, stderr = run("compile", str(bad), "-o", str(out))
    assert code == 1
    assert re.search(rf"shop\.yaml:{line}:\d+: error\[E\d+\]: .*attempts", stderr), stderr
    assert "Traceback" not in stderr + stdout
    assert not out.exists()


def test_unreadable_input_and_bad_options_exit_2(tmp_path: Path) -> None:
    code, _, stderr = run("compile", str(tmp_path / "missing.yaml"), "-o", str(tmp_path / "o"))
    assert code == 2 and "missing.yaml" in stderr
    code, _, stderr = run("compile", str(SHOP), "--env", "nope", "-o", str(tmp_path / "o"))
    assert code == 2 and "unknown environment 'nope'" in stderr
    code, _, stderr = run("compile", str(SHOP), "-o", str(REPO / "meshspec"))
    assert code == 2 and "not a meshspec bundle" in stderr
    assert not (tmp_path / "o").exists()


def test_a_failed_compile_keeps_the_previous_bundle(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("compile", str(SHOP), "-o", str(out))[0] == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    bad = tmp_path / "bad.yaml"
    shutil.copy(SHOP, bad)
    bad.write_text(bad.read_text().replace("port: 9090", "port: 99999"))
    assert run("compile", str(bad), "-o", str(out))[0] == 1
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_github_annotations_for_ci(tmp_path: Path) -> None:
    bad = tmp_path / "shop.yaml"
    bad.write_text(SHOP.read_text().replace("port: 9090", "port: 99999"))
    code, _, stderr = run("compile", str(bad), "-o", str(tmp_path / "o"), "--format", "github")
    assert code == 1
    assert re.search(r"^::error file=.*shop\.yaml,line=\d+,col=\d+,title=E\d+::", stderr, re.M)
