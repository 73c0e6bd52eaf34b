"""The Consul files follow Consul's documented format exactly (the Consul helper's tests then
feed them to a real agent): field names, value types, Go durations."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any

import orjson
import pytest
from compile_support import ir_mesh, wide_mesh
from meshspec_runtime.layout import SERVICES_PER_INDEX, bucket_name, bucket_of

from meshspec.compile.durations import go_duration
from meshspec.compile.emitters.consul_services import definitions, encoded, path_of
from meshspec.compile.ir import HealthCheck
from meshspec.compile.pipeline import BuiltBundle, build_bundle

# From Consul's service definition and health check configuration references.
SERVICE_FIELDS = {"ID", "Name", "Address", "Port", "Tags", "Meta", "Weights", "Checks"}
CHECK_FIELDS = {
    "Name",
    "HTTP",
    "GRPC",
    "grpc_use_tls",
    "TCP",
    "TTL",
    "Interval",
    "Timeout",
    "DeregisterCriticalServiceAfter",
    "success_before_passing",
    "failures_before_critical",
}
CHECK_DURATIONS = {"Interval", "Timeout", "TTL", "DeregisterCriticalServiceAfter"}
# From the service-defaults and service-resolver configuration entry references.
DEFAULTS_FIELDS = {"Kind", "Name", "Protocol", "UpstreamConfig"}
OVERRIDE_FIELDS = {"Name", "Limits", "PassiveHealthCheck"}
LIMITS_FIELDS = {"MaxConnections", "MaxPendingRequests", "MaxConcurrentRequests"}
PASSIVE_FIELDS = {
    "Interval",
    "MaxFailures",
    "EnforcingConsecutive5xx",
    "MaxEjectionPercent",
    "BaseEjectionTime",
}
RESOLVER_FIELDS = {"Kind", "Name", "RequestTimeout", "LoadBalancer"}
LB_FIELDS = {"Policy", "LeastRequestConfig", "RingHashConfig", "HashPolicies"}
WRITE_ORDER = ("service-defaults", "service-resolver")
LB_POLICIES = {"round_robin", "least_request", "ring_hash", "maglev", "random"}
GO_DURATION = re.compile(r"^(0s|(\d+h)?(\d+m)?(\d+(\.\d+)?(s|ms|µs|ns))?)$")


def parse_go_duration(text: str) -> float:
    assert GO_DURATION.match(text) and text, text
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "µs": 1e-6, "ns": 1e-9}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(h|ms|µs|ns|m|s)", text))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.5, "500ms"),
        (10, "10s"),
        (60, "1m0s"),
        (90, "1m30s"),
        (3600, "1h0m0s"),
        (5400.25, "1h30m0.25s"),
        (0.0015, "1.5ms"),
        (2e-6, "2µs"),
        (1.5, "1.5s"),
    ],
)
def test_go_duration_spells_durations_as_go_does(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text
    assert parse_go_duration(text) == pytest.approx(seconds)


def definitions_of(built: BuiltBundle, service: str) -> list[dict[str, object]]:
    """``service``'s definitions, from the bucket file that holds them."""
    document = json.loads(built.files[path_of(ir_mesh(), service)])
    assert set(document) == {"services"}
    return [entry for entry in document["services"] if entry["Name"] == service]


def test_service_definitions_use_consuls_fields(built: BuiltBundle) -> None:
    mesh = ir_mesh()
    files = [path for path in built.files if path.startswith("consul/services/")]
    held = [e["ID"] for path in sorted(files) for e in json.loads(built.files[path])["services"]]
    assert sorted(held) == sorted(e.id for s in mesh.services for e in s.endpoints)
    for service in mesh.services:
        entries: list[dict[str, Any]] = definitions_of(built, service.name)
        assert [e["ID"] for e in entries] == [e.id for e in service.endpoints]
        for entry, endpoint in zip(entries, service.endpoints, strict=True):
            assert set(entry) <= SERVICE_FIELDS
            assert entry["Name"] == service.name
            assert (entry["Address"], entry["Port"]) == (endpoint.address, endpoint.port)
            assert entry["Weights"] == {"Passing": endpoint.weight, "Warning": 1}
            assert entry["Meta"]["meshspec_bundle_version"] == built.version
            assert all(isinstance(v, str) for v in entry["Meta"].values())
            (check,) = entry["Checks"]
            assert set(check) <= CHECK_FIELDS
            for field in CHECK_DURATIONS & set(check):
                parse_go_duration(check[field])


def test_checks_follow_the_spec(built: BuiltBundle) -> None:
    def first_check(name: str) -> dict[str, object]:
        entries: list[dict[str, Any]] = definitions_of(built, name)
        check: dict[str, object] = entries[0]["Checks"][0]
        return check

    assert first_check("checkout") == {
        "Name": "checkout http health (checkout-0)",
        "HTTP": "http://10.0.1.10:8080/healthz",
        "Interval": "10s",
        "Timeout": "2s",
        "DeregisterCriticalServiceAfter": "1m0s",
        "success_before_passing": 1,
        "failures_before_critical": 3,
    }
    assert first_check("payments")["GRPC"] == "10.0.2.10:9090/payments.v1.Health"
    assert first_check("inventory")["TCP"] == "[fd00::7]:7000"  # IPv6 in brackets


def config_entries(files: Mapping[str, bytes]) -> dict[str, dict[str, Any]]:
    """Every config entry of the bundle, as ``<kind>-<name>``."""
    entries = {}
    for path, content in files.items():
        if path.startswith("consul/config-entries/"):
            grouped = json.loads(content)
            assert set(grouped) == {"entries"}, path
            for entry in grouped["entries"]:
                name = f"{entry['Kind']}-{entry['Name']}"
                assert name not in entries, f"{name} listed twice"
                entries[name] = entry
    return entries


def test_config_entries_are_grouped_by_the_bucket_of_their_service() -> None:
    mesh = wide_mesh(SERVICES_PER_INDEX + 50)  # two indexes
    count = mesh.indexes()
    assert count == 2
    built = build_bundle(mesh, "0" * 64)
    paths = [path for path in built.files if path.startswith("consul/config-entries/")]
    assert sorted(paths) == [f"consul/config-entries/{bucket_name(n)}.json" for n in range(2)]
    for path in paths:
        entries = json.loads(built.files[path])["entries"]
        assert {
            f"consul/config-entries/{bucket_name(bucket_of(e['Name'], count))}.json"
            for e in entries
        } == {path}
        kinds = [entry["Kind"] for entry in entries]
        assert kinds == sorted(kinds, key=WRITE_ORDER.index)  # defaults before resolvers
        for kind in WRITE_ORDER:
            names = [entry["Name"] for entry in entries if entry["Kind"] == kind]
            assert names == sorted(names)
    entries = config_entries(built.files)
    assert {n for n in entries if n.startswith("service-defaults-")} == {
        f"service-defaults-{service.name}" for service in mesh.services
    }
    # every service but the first is called, by one caller: each has its resolver
    assert {n for n in entries if n.startswith("service-resolver-")} == {
        f"service-resolver-{service.name}" for service in mesh.services[1:]
    }


def test_config_entries_use_consuls_fields(built: BuiltBundle) -> None:
    entries = config_entries(built.files)
    for name, entry in entries.items():
        if entry["Kind"] == "service-defaults":
            assert set(entry) <= DEFAULTS_FIELDS
            for override in entry.get("UpstreamConfig", {}).get("Overrides", []):
                assert set(override) <= OVERRIDE_FIELDS
                assert set(override.get("Limits", {})) <= LIMITS_FIELDS
                passive = override.get("PassiveHealthCheck", {})
                assert set(passive) <= PASSIVE_FIELDS
                if "BaseEjectionTime" in passive:
                    parse_go_duration(passive["BaseEjectionTime"])
        else:
            assert entry["Kind"] == "service-resolver"
            assert set(entry) <= RESOLVER_FIELDS
            protocol = entries[f"service-defaults-{entry['Name']}"]["Protocol"]
            # RequestTimeout is an HTTP setting: only http and grpc services have it
            assert ("RequestTimeout" in entry) == (protocol != "tcp"), name
            if protocol != "tcp":
                parse_go_duration(entry["RequestTimeout"])
            balancer = entry.get("LoadBalancer", {"Policy": "round_robin"})
            assert set(balancer) <= LB_FIELDS and balancer["Policy"] in LB_POLICIES
    checkout = entries["service-defaults-checkout"]["UpstreamConfig"]["Overrides"]
    assert checkout == [
        {
            "Name": "payments",
            "Limits": {"MaxConnections": 64, "MaxConcurrentRequests": 64},
            "PassiveHealthCheck": {
                "MaxFailures": 5,
                "EnforcingConsecutive5xx": 100,
                "MaxEjectionPercent": 50,
                "BaseEjectionTime": "30s",
            },
        }
    ]
    assert entries["service-resolver-payments"]["LoadBalancer"] == {
        "Policy": "least_request",
        "LeastRequestConfig": {"ChoiceCount": 2},
    }
    # inventory is balanced with peak_ewma, which Consul cannot express: no LoadBalancer
    assert "LoadBalancer" not in entries["service-resolver-inventory"]


def test_a_resolver_is_left_out_when_callers_disagree() -> None:
    base = ir_mesh()
    checkout = base.services[0]
    other = dataclasses.replace(
        checkout,
        name="admin",
        edges=(
            dataclasses.replace(
                checkout.edges[1], upstream="payments", policy=checkout.edges[0].policy
            ),
        ),
    )
    mesh = dataclasses.replace(base, services=(other, *base.services))
    entries = config_entries(build_bundle(mesh, "0" * 64).files)
    assert "service-resolver-payments" not in entries
    assert "service-resolver-inventory" in entries


def test_encoded_definitions_are_the_definitions_as_json() -> None:
    """The per-service template the emitter fills in gives exactly the definitions' JSON:
    for every kind of check, none, IPv6, a '%' in meta, and a placeholder-like NUL in meta
    (which takes the dict path)."""
    mesh = ir_mesh()
    ttl = HealthCheck(kind="ttl", target=None, interval=30.0, timeout=2.0, deregister_after=None)
    variants = [
        *mesh.services,
        *(
            dataclasses.replace(service, health_check=check)
            for service in mesh.services
            for check in (None, ttl)
        ),
        *(
            dataclasses.replace(service, meta=(("note", note),))
            for service in mesh.services
            for note in ("100%s %d", "100% \0id\0 ok")
        ),
    ]
    kinds = {s.health_check.kind if s.health_check else None for s in variants}
    assert kinds == {"http", "grpc", "tcp", "ttl", None}
    for service in variants:
        expected = [
            orjson.dumps(d, option=orjson.OPT_SORT_KEYS) for d in definitions(mesh, service)
        ]
        assert encoded(mesh, service) == expected, service.name
