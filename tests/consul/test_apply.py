"""``meshspec apply`` against a real agent: the change set, idempotence, ``--dry-run`` writing
nothing, deletion of only the entries it created, and entries it did not create left alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from consul_agent import ConsulAgent
from support import REPO

from meshspec.cli import main
from meshspec.compile import compile_spec
from meshspec.consul_apply import MANAGED_META


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("apply") / "shop"
    compile_spec(REPO / "examples" / "shop.yaml", home)
    return home


def apply(agent: ConsulAgent, bundle: Path, *extra: str) -> Result:
    return CliRunner().invoke(
        main, ["apply", str(bundle), "--consul", f"http://{agent.http_addr}", *extra]
    )


def entries(agent: ConsulAgent) -> dict[str, dict[str, object]]:
    found = {}
    for kind in ("service-defaults", "service-resolver"):
        for entry in agent.client.config.list(kind):
            found[f"{kind}/{entry['Name']}"] = entry
    return found


def bundle_entries(bundle: Path) -> set[str]:
    names = set()
    for path in (bundle / "current" / "consul" / "config-entries").glob("*.json"):
        for entry in json.loads(path.read_bytes())["entries"]:
            names.add(f"{entry['Kind']}/{entry['Name']}")
    return names


def test_dry_run_then_apply_twice(consul_agent: ConsulAgent, shop: Path) -> None:
    expected = bundle_entries(shop)
    assert expected
    dry = apply(consul_agent, shop, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output
    assert {
        line.split()[2] for line in dry.output.splitlines() if line.startswith("+ create")
    } == expected
    assert entries(consul_agent) == {}  # nothing written

    first = apply(consul_agent, shop)
    assert first.exit_code == 0, first.output
    written = entries(consul_agent)
    assert set(written) == expected
    assert all(entry["Meta"] == {MANAGED_META: "shop"} for entry in written.values())  # type: ignore[comparison-overlap]
    indexes = {name: entry["ModifyIndex"] for name, entry in written.items()}

    second = apply(consul_agent, shop)
    assert second.exit_code == 0, second.output
    assert f"0 change(s), {len(expected)} unchanged, 0 conflict(s)" in second.output
    assert {name: entry["ModifyIndex"] for name, entry in entries(consul_agent).items()} == indexes


def test_removes_only_its_own_entries_and_leaves_foreign_ones(
    consul_agent: ConsulAgent, shop: Path
) -> None:
    client = consul_agent.client
    # an entry an earlier apply of this mesh made, that the bundle no longer has
    client.config.set(
        "service-defaults", "retired", {"Protocol": "http", "Meta": {MANAGED_META: "shop"}}
    )
    # entries someone else made: one the bundle does not have, one it does
    client.config.set("service-defaults", "hand-made", {"Protocol": "tcp"})
    client.config.set("service-defaults", "ledger", {"Protocol": "tcp"})
    result = apply(consul_agent, shop)
    assert result.exit_code == 1, result.output  # the conflict is reported
    assert "- delete service-defaults/retired" in result.output
    assert "! conflict service-defaults/ledger (Protocol, Meta)" in result.output
    found = entries(consul_agent)
    assert "service-defaults/retired" not in found
    assert found["service-defaults/hand-made"]["Protocol"] == "tcp"
    assert found["service-defaults/ledger"]["Protocol"] == "tcp"  # left alone
    adopted = apply(consul_agent, shop, "--adopt")
    assert adopted.exit_code == 0, adopted.output
    assert entries(consul_agent)["service-defaults/ledger"]["Protocol"] == "grpc"


def test_unreachable_agent_is_a_clear_error(shop: Path) -> None:
    from support import free_port

    result = CliRunner().invoke(
        main, ["apply", str(shop), "--consul", f"http://127.0.0.1:{free_port()}"]
    )
    assert result.exit_code == 2
    assert "ConnectionError" in result.output
