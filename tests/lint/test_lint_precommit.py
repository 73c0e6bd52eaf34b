"""The hooks of ``.pre-commit-hooks.yaml``, run by the real ``pre-commit`` on a temporary git
repository, offline.

pre-commit would build a fresh virtualenv and install this repository from its hook repo (a
network install); the test instead turns each published hook into a ``repo: local`` hook of
``language: system`` with the same entry, file filters and arguments, whose ``meshspec`` is
the one under test. So the hook definitions themselves (entry, ``types``, how pre-commit
passes files) are what is exercised.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import REPO, require_binary

BIN = Path(sys.executable).parent


def _hooks() -> list[dict[str, object]]:
    hooks: list[dict[str, object]] = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    return hooks


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    require_binary("git")
    if shutil.which("pre-commit", path=str(BIN)) is None:
        pytest.fail(
            "pre-commit is not installed: it is in the test extras (pip install -e '.[test]')"
        )
    repo = tmp_path / "project"
    (repo / "mesh").mkdir(parents=True)
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "ci@example.invalid")
    _git(repo, "config", "user.name", "ci")
    local = []
    for hook in _hooks():
        entry = str(hook["entry"]).replace("meshspec", str(BIN / "meshspec"), 1)
        local.append(
            {**hook, "entry": entry, "language": "system", "files": r"^mesh/.*\.ya?ml$"}
            | ({"args": ["--deny", "all"]} if hook["id"] == "meshspec-lint" else {})
        )
    config = {"repos": [{"repo": "local", "hooks": local}]}
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (repo / "README.txt").write_text("not a spec\n")
    return repo


def _run(repo: Path) -> subprocess.CompletedProcess[str]:
    _git(repo, "add", "-A")
    env = {**os.environ, "PRE_COMMIT_HOME": str(repo.parent / "pre-commit-home")}
    return subprocess.run(
        [str(BIN / "pre-commit"), "run", "--all-files", "--color", "never"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_the_published_hooks_are_validate_and_lint() -> None:
    assert [h["id"] for h in _hooks()] == ["meshspec-validate", "meshspec-lint"]
    assert all(h["language"] == "python" for h in _hooks())


def test_hooks_pass_a_clean_spec(project: Path) -> None:
    shutil.copy(REPO / "examples" / "shop.yaml", project / "mesh" / "shop.yaml")
    result = _run(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "meshspec validate" in result.stdout and "meshspec lint" in result.stdout
    assert result.stdout.count("Passed") == 2


def test_hooks_fail_an_invalid_spec_and_a_linted_one(project: Path) -> None:
    shutil.copy(REPO / "examples" / "lint" / "flagged.yaml", project / "mesh" / "flagged.yaml")
    result = _run(project)
    assert result.returncode == 1
    assert "warning[W0101]" in result.stdout  # lint --deny all failed the commit
    (project / "mesh" / "flagged.yaml").unlink()
    broken = (REPO / "examples" / "shop.yaml").read_text().replace("port: 8080", "port: http", 1)
    (project / "mesh" / "shop.yaml").write_text(broken)
    result = _run(project)
    assert result.returncode == 1
    assert "mesh/shop.yaml:" in result.stdout and "error[E0101]" in result.stdout
