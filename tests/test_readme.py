"""The README's examples say what the code does."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from support import REPO

from meshspec.spec import edge_policy, load_spec

README = (REPO / "README.md").read_text(encoding="utf-8")


def _block_after(heading: str, language: str) -> str:
    match = re.search(rf"{re.escape(heading)}\n.*?```{language}\n(.*?)```", README, re.S)
    assert match, f"no {language} block after {heading!r}"
    return match.group(1)


def test_the_spec_example_resolves_as_the_merge_rules_say(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(_block_after("## The spec, in brief", "yaml"), encoding="utf-8")
    base = edge_policy(load_spec(path), "checkout", "payments")
    assert base.timeout == 3.0
    assert (base.retry.attempts, base.retry.on) == (2, ("503",))
    assert (base.retry.backoff.base, base.retry.backoff.max) == (0.025, 1.0)
    assert base.retry.budget is not None and base.retry.budget.ratio == 0.2
    assert base.circuit_breaker is None
    assert edge_policy(load_spec(path, env="prod"), "checkout", "payments").timeout == 1.5
    overridden = load_spec(
        path, overrides=["services.checkout.upstreams.payments.retry.attempts=1"]
    )
    assert edge_policy(overridden, "checkout", "payments").retry.attempts == 1


def test_ci_runs_the_readme_test_command() -> None:
    commands = re.findall(r"```sh\n(python3 -m venv .*?)\n```", README)
    assert len(commands) == 2, "the README has two commands: the main job and the tests"
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci.splitlines()
    for command in commands:
        shlex.split(command)  # both are well-formed shell
