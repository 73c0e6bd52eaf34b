"""docs/ci.md's GitHub Actions job: each of its ``run:`` steps (but the install) runs, in
order, on a temporary git repository whose branch changes an objective over its base."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from support import REPO, require_binary

BIN = Path(sys.executable).parent


def _job() -> dict[str, object]:
    text = (REPO / "docs" / "ci.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```\n", text, re.S)
    workflow = next(yaml.safe_load(b) for b in blocks if "jobs:" in b)
    job: dict[str, object] = workflow["jobs"]["mesh"]
    return job


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_every_run_step_of_the_ci_recipe_succeeds(tmp_path: Path) -> None:
    require_binary("git")
    repo = tmp_path / "repo"
    repo.mkdir()
    for folder in ("examples", "scenarios"):
        shutil.copytree(REPO / folder, repo / folder)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "-c", "user.email=ci@example.invalid", "-c", "user.name=ci", "add", "-A")
    _git(repo, "-c", "user.email=ci@example.invalid", "-c", "user.name=ci", "commit", "-qm", "base")
    _git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")
    shop = repo / "examples" / "shop.yaml"
    shop.write_text(shop.read_text().replace("success_rate: 99.9%", "success_rate: 99.5%", 1))
    runner_temp = tmp_path / "runner"
    runner_temp.mkdir()
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_BASE_REF": "main",
        "RUNNER_TEMP": str(runner_temp),
    }
    steps = [s for s in _job()["steps"] if isinstance(s, dict) and "run" in s]  # type: ignore[attr-defined]
    names = [s["name"] for s in steps]
    assert names == [
        "Install",
        "Validate",
        "Lint",
        "Compile the base branch's bundle",
        "Compile",
        "Simulate",
        "Diff",
    ]
    for step in steps[1:]:
        result = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", step["run"]],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, f"{step['name']}:\n{result.stdout}\n{result.stderr}"
    diff = (runner_temp / "diff.txt").read_text()
    # the objective moved from 99.9% to 99.5%: the edge's objective series says so
    assert "meshspec:objective:ratio web -> gateway: expr 0.999 -> 0.995" in diff
    assert (repo / "build" / "report" / "report.json").is_file()
