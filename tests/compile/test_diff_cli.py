"""``meshspec diff``: changes in a reviewer's terms, between bundles and/or specs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from compile_support import ir_mesh
from support import REPO

from meshspec.cli import main
from meshspec.compile import compile_spec
from meshspec.compile.pipeline import build_bundle, write_bundle

SHOP = REPO / "examples" / "shop.yaml"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["diff", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def base(tmp_path: Path) -> Path:
    compile_spec(SHOP, tmp_path / "base")
    return tmp_path / "base"


def test_equal_inputs_exit_0_whether_bundle_or_spec(base: Path) -> None:
    for old, new in ((base, base), (base, SHOP), (SHOP, SHOP)):
        code, stdout, _ = run(str(old), str(new))
        assert code == 0, stdout
        assert stdout.splitlines()[-1] == "no changes"


def test_a_retry_change_reads_as_one_line(base: Path, tmp_path: Path) -> None:
    compile_spec(
        SHOP, tmp_path / "new", overrides=["services.checkout.upstreams.payments.retry.attempts=3"]
    )
    code, stdout, _ = run(str(base), str(tmp_path / "new"))
    assert code == 1
    assert stdout.splitlines()[2:] == ["checkout -> payments: retry.attempts 2 -> 3", "1 change(s)"]


def test_environments_show_endpoints_policies_and_zone(tmp_path: Path) -> None:
    code, stdout, _ = run(str(SHOP), str(SHOP), "--old-env", "prod", "--new-env", "staging")
    assert code == 1
    lines = stdout.splitlines()
    assert "endpoint removed: payments 10.2.3.12:9090" in lines
    assert "endpoint added: payments 10.1.3.10:9090" in lines
    assert "endpoint removed: ledger [fd00::4:11]:9091" in lines
    assert "web -> gateway: circuit_breaker on -> off" in lines
    assert "web -> gateway: retry.budget.ratio 10% -> 20%" in lines
    assert "mesh: dns.zone shop.mesh.internal -> shop.staging.internal" in lines
    # a policy switched off is one line, not one per field it had
    assert not any(line.startswith("web -> gateway: circuit_breaker.") for line in lines)


def test_services_and_edges_added_and_removed(tmp_path: Path) -> None:
    base = ir_mesh()
    write_bundle(build_bundle(base, "0" * 64), tmp_path / "old")
    search = dataclasses.replace(base.services[1], name="search", edges=())
    checkout = dataclasses.replace(base.services[0], edges=base.services[0].edges[1:])
    changed = dataclasses.replace(base, services=(checkout, *base.services[1:], search))
    write_bundle(build_bundle(changed, "0" * 64), tmp_path / "new")
    code, stdout, _ = run(str(tmp_path / "old"), str(tmp_path / "new"), "--format", "json")
    assert code == 1
    document = json.loads(stdout)
    assert document["equal"] is False
    texts = [change["text"] for change in document["changes"]]
    assert "service added: search" in texts
    assert "edge removed: checkout -> inventory" in texts
    assert not any(text.startswith("endpoint added: search") for text in texts)
    assert document["old"]["kind"] == document["new"]["kind"] == "bundle"


def test_an_edge_that_stops_sharing_a_policy_reads_as_its_own_change(tmp_path: Path) -> None:
    # Both checkout edges store one policy (by content); then only payments' retries change.
    base = ir_mesh()
    checkout, *others = base.services
    payments_policy = checkout.edges[1].policy
    twin = ir_mesh().service("checkout").edges[1].policy  # an equal policy, another object
    assert twin == payments_policy and twin is not payments_policy
    shared = dataclasses.replace(
        checkout,
        edges=(
            dataclasses.replace(checkout.edges[0], policy=twin),
            checkout.edges[1],
        ),
    )
    old = build_bundle(dataclasses.replace(base, services=(shared, *others)), "0" * 64)
    assert len(json.loads(old.files["policy.json"])["policies"]) == 1
    write_bundle(old, tmp_path / "old")
    fewer = ir_mesh(retry_attempts=2).service("checkout").edges[1].policy
    split = dataclasses.replace(
        shared, edges=(shared.edges[0], dataclasses.replace(shared.edges[1], policy=fewer))
    )
    write_bundle(
        build_bundle(dataclasses.replace(base, services=(split, *others)), "0" * 64),
        tmp_path / "new",
    )
    code, stdout, _ = run(str(tmp_path / "old"), str(tmp_path / "new"))
    assert code == 1
    assert stdout.splitlines()[2:] == ["checkout -> payments: retry.attempts 3 -> 2", "1 change(s)"]


def test_bad_input_exits_2_and_names_the_problem(base: Path, tmp_path: Path) -> None:
    policy = base / "current" / "policy.json"
    original = policy.read_bytes()
    tampered = original.replace(b'"attempts":2', b'"attempts":9')
    assert tampered != original
    policy.write_bytes(tampered)
    code, _, stderr = run(str(base), str(SHOP))
    assert code == 2 and "policy.json" in stderr and "changed after compilation" in stderr
    code, _, stderr = run(str(SHOP), str(tmp_path / "nothing.yaml"))
    assert code == 2 and "nothing.yaml" in stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: meshspec/v1\nmesh: 3\n")
    code, _, stderr = run(str(SHOP), str(bad))
    assert code == 2 and "bad.yaml:2:" in stderr


def test_a_version_folder_and_its_home_compare_equal(base: Path) -> None:
    (folder,) = (base / "versions").iterdir()
    code, stdout, _ = run(str(folder), str(base))
    assert code == 0, stdout
    assert f"--- bundle {folder} (version {folder.name})" in stdout
