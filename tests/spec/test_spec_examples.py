"""The bundled examples: shop.yaml is valid in every environment; each file in
examples/invalid/ produces exactly the diagnostics recorded beside it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from support import REPO

from meshspec.commands.validate import command as validate
from meshspec.spec import edge_policy, load_spec

INVALID = sorted((REPO / "examples" / "invalid").glob("*.yaml"))


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(validate, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_there_are_enough_invalid_examples() -> None:
    assert len(INVALID) >= 25
    for path in INVALID:
        assert path.with_suffix(".expected").is_file(), f"{path.name} has no .expected file"


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_example_gives_its_recorded_error(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    relative = str(path.relative_to(REPO))
    status, output = _run(relative)
    assert status == 1
    assert output == path.with_suffix(".expected").read_text(encoding="utf-8")
    codes = {line.split("[")[1].split("]")[0] for line in output.splitlines()}
    assert len(codes) == 1, "one mistake per example"


def test_shop_is_valid_in_every_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    status, output = _run("examples/shop.yaml")
    assert (status, output) == (0, "examples/shop.yaml: valid (8 services, 8 edges)\n")
    for env in ("staging", "prod"):
        status, output = _run("examples/shop.yaml", "--env", env)
        assert status == 0, output
        assert f"(environment {env})" in output


def test_shop_exercises_the_spec() -> None:
    spec = load_spec(REPO / "examples" / "shop.yaml")
    protocols = {service.protocol for service in spec.services.values()}
    assert {"http", "grpc"} <= protocols
    assert 6 <= len(spec.services) <= 10
    assert set(spec.environments) == {"staging", "prod"}
    # web -> gateway -> checkout -> payments -> ledger: four hops
    assert "ledger" in spec.services["payments"].upstreams
    assert "payments" in spec.services["checkout"].upstreams
    assert edge_policy(spec, "payments", "ledger").retry.attempts == 1  # retry: off


def test_examples_point_editors_at_the_schema() -> None:
    first = (REPO / "examples" / "shop.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/meshspec.schema.json"
