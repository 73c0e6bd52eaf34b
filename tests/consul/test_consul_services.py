"""A real Consul agent accepts our service definitions and config entries as written.

Each definition goes in twice, through the HTTP API and as a file for ``consul services
register``, and must then appear in the catalog with its address, port, tags, meta, weights
and checks. Each config entry must pass ``consul config write`` and read back unchanged.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import consul
import pytest
from consul_agent import ConsulAgent
from consul_inputs import (
    ConsulInputs,
    JsonObject,
    api_definition,
    go_seconds,
    mismatches,
    persisted_checks,
    register_through_api,
    wait_for,
)

DEFAULT_WEIGHTS = {"Passing": 1, "Warning": 1}
CHECK_KINDS = ("HTTP", "TCP", "GRPC", "TTL")
DURATIONS = ("Interval", "Timeout", "TTL", "DeregisterCriticalServiceAfter")
# Set by the agent, or not part of the check's definition.
NOT_PERSISTED = ("CheckID", "Name", "Status", "Notes")


def _by_name(services: list[JsonObject]) -> dict[str, list[JsonObject]]:
    grouped: dict[str, list[JsonObject]] = defaultdict(list)
    for service in services:
        grouped[service["Name"]].append(service)
    return grouped


def _catalog_entries(client: consul.Consul, name: str) -> dict[str, JsonObject]:
    _, entries = client.catalog.service(name)
    return {entry["ServiceID"]: entry for entry in entries}


def _check_kind(check: JsonObject) -> str:
    kinds = [kind for kind in CHECK_KINDS if kind in check]
    assert len(kinds) == 1, f"a check needs exactly one of {CHECK_KINDS}: {check}"
    return kinds[0].lower()


def assert_in_catalog(agent: ConsulAgent, definitions: list[JsonObject]) -> None:
    """Every definition is in the catalog as sent, and the agent runs its checks as sent."""
    client = agent.client
    for name, group in _by_name([api_definition(d) for d in definitions]).items():
        ids = {s["ID"] for s in group}
        assert wait_for(lambda: ids <= set(_catalog_entries(client, name))), (  # noqa: B023
            f"{name}: instances {sorted(ids)} never reached the catalog"
        )
        entries = _catalog_entries(client, name)
        agent_checks = list(client.agent.checks().values())
        persisted = persisted_checks(agent.data_dir)
        for service in group:
            entry = entries[service["ID"]]
            assert entry["ServiceName"] == service["Name"]
            assert entry["ServiceAddress"] == service.get("Address", "")
            assert entry["ServicePort"] == service.get("Port", 0)
            assert entry["ServiceTags"] == service.get("Tags", [])
            assert entry["ServiceMeta"] == service.get("Meta", {})
            assert entry["ServiceWeights"] == service.get("Weights", DEFAULT_WEIGHTS)
            _assert_checks(
                service,
                [c for c in agent_checks if c["ServiceID"] == service["ID"]],
                [p for p in persisted if p["Check"]["ServiceID"] == service["ID"]],
            )
        assert wait_for(lambda: _catalog_check_count(client, name) == _check_count(group)), (  # noqa: B023
            f"{name}: the catalog never got all {_check_count(group)} checks"
        )


def _check_count(services: list[JsonObject]) -> int:
    return sum(len(s.get("Checks", [])) for s in services)


def _catalog_check_count(client: consul.Consul, name: str) -> int:
    _, checks = client.health.checks(name)
    return len(checks)


def _assert_checks(service: JsonObject, reported: list[JsonObject], kept: list[JsonObject]) -> None:
    """The agent's view of a service's checks matches what was sent, field by field."""
    sent = sorted(service.get("Checks", []), key=lambda c: str(c["Name"]))
    reported = sorted(reported, key=lambda c: str(c["Name"]))
    kept = sorted(kept, key=lambda c: str(c["Check"]["Name"]))
    where = service["ID"]
    assert len(reported) == len(kept) == len(sent), f"{where}: sent {sent}, agent has {reported}"
    for check, found, record in zip(sent, reported, kept, strict=True):
        assert found["Name"] == check["Name"]
        assert found["Type"] == _check_kind(check), f"{where}: {found}"
        parsed = record["ChkType"]
        for key, value in check.items():
            if key in NOT_PERSISTED:
                continue
            if key in DURATIONS:
                seconds = go_seconds(value)
                assert seconds is not None, f"{where}: {key} {value!r} is not a Go duration"
                assert parsed[key] == round(seconds * 1e9), f"{where}: {key} {value!r}: {parsed}"
            else:
                assert parsed[key] == value, f"{where}: {key} {value!r}, agent has {parsed[key]!r}"


def test_service_definitions_register_through_http_api(
    consul_agent: ConsulAgent, consul_inputs: ConsulInputs
) -> None:
    for definition in consul_inputs.definitions():
        register_through_api(consul_agent.client, definition)
    assert_in_catalog(consul_agent, consul_inputs.definitions())


def test_service_definition_files_register_with_consul_cli(
    consul_agent: ConsulAgent, consul_inputs: ConsulInputs
) -> None:
    for service_file in consul_inputs.services:
        result = consul_agent.cli("services", "register", str(service_file.path))
        assert result.returncode == 0, f"{service_file.path}:\n{result.stdout}{result.stderr}"
    assert_in_catalog(consul_agent, consul_inputs.definitions())


def test_consul_cli_rejects_a_misspelt_service_field(
    consul_agent: ConsulAgent, tmp_path: Path
) -> None:
    """The file format is checked field by field, so acceptance above means something."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"service": {"Name": "typo", "Port": 80, "Wieghts": {"Passing": 2}}}))
    result = consul_agent.cli("services", "register", str(bad))
    assert result.returncode != 0
    assert "Wieghts" in result.stdout + result.stderr
    assert "typo" not in consul_agent.client.agent.services()


def _write_order(entry: tuple[Path, JsonObject]) -> int:
    # service-defaults first: a resolver's discovery chain is checked against the protocol.
    return 0 if entry[1]["Kind"] == "service-defaults" else 1


def test_config_entries_accepted_by_consul_config_write(
    consul_agent: ConsulAgent, consul_inputs: ConsulInputs
) -> None:
    entries = sorted(consul_inputs.config_entries, key=_write_order)
    if not entries:
        pytest.fail(f"{consul_inputs.label}: no config entries to write")
    for path, entry in entries:
        # a bundle groups entries; docs/consul.md pipes each to `consul config write -`
        result = consul_agent.cli("config", "write", "-", stdin=json.dumps(entry))
        assert result.returncode == 0, f"{path}:\n{result.stdout}{result.stderr}"
    for path, entry in entries:
        stored: Any = consul_agent.client.config.get(entry["Kind"], entry["Name"])
        problems = mismatches(entry, stored, path.name)
        assert not problems, "\n".join(problems)


def test_http_api_refuses_the_config_file_spelling_of_a_check_field(
    consul_agent: ConsulAgent,
) -> None:
    """The API's decoder refuses unknown keys too, and spells multi-word keys its own way:
    why register_through_api respells a definition written in the config-file format."""
    check = {"Name": "t", "TTL": "10s", "success_before_passing": 2}
    with pytest.raises(consul.ConsulException, match="success_before_passing"):
        consul_agent.client.agent.service.register("typo", check=check)
    assert "typo" not in consul_agent.client.agent.services()
