"""``consul/services/<bucket>.json``: one Consul service definition per instance.

The ``{"services": [...]}`` form that ``consul services register`` and an agent's config
directory both read (``consul validate`` checks it in the tests), grouped as the indexes group
paths: ``<n>.json`` holds the services whose name hashes into n of ``mesh.indexes()``
(``meshspec_runtime.layout.bucket_of``), about 256 per file, services in name order,
instances in spec order: a file per service made tens of thousands of files for a large mesh.
Field names follow Consul's service and check configuration reference: the config-file parser
matches single-word keys whatever their case (``ID``, ``HTTP``, ``Interval``) and knows
``DeregisterCriticalServiceAfter`` as an alias, but takes the three multi-word check keys below
only in snake case (it refuses ``SuccessBeforePassing``; the HTTP API, conversely, takes only
the CamelCase spelling). Durations use Go's syntax (``meshspec.compile.durations``).
"""

from __future__ import annotations

from typing import Any

from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.layout import bucket_name, bucket_of

from meshspec.compile import stamp
from meshspec.compile.durations import go_duration
from meshspec.compile.ir import HealthCheck, ResolvedMesh, Service
from meshspec.compile.jsonfile import dump_json

FOLDER = "consul/services"
VERSION_META = "meshspec_bundle_version"
"""Meta key carrying the bundle version, so an operator can see which bundle registered what."""
MESH_META = "meshspec_mesh"
WARNING_WEIGHT = 1
"""Consul's default weight for an instance whose checks warn."""
# Config-file spellings (see the module docstring).
SUCCESS_BEFORE_PASSING = "success_before_passing"
FAILURES_BEFORE_CRITICAL = "failures_before_critical"
GRPC_USE_TLS = "grpc_use_tls"


def emit(mesh: ResolvedMesh) -> dict[str, bytes]:
    count = mesh.indexes()
    grouped: dict[int, list[dict[str, Any]]] = {}
    for service in mesh.services:
        grouped.setdefault(bucket_of(service.name, count), []).extend(definitions(mesh, service))
    return {
        f"{FOLDER}/{bucket_name(bucket)}.json": dump_json({"services": grouped[bucket]})
        for bucket in sorted(grouped)
    }


def path_of(mesh: ResolvedMesh, service: str) -> str:
    """The file holding ``service``'s definitions."""
    return f"{FOLDER}/{bucket_name(bucket_of(service, mesh.indexes()))}.json"


def definitions(mesh: ResolvedMesh, service: Service) -> list[dict[str, Any]]:
    """``service``'s definitions: one per instance. What every instance shares (meta, tags,
    the check's settings) is built once per service."""
    meta = dict(service.meta)
    meta[VERSION_META] = stamp.VERSION
    meta[MESH_META] = mesh.name
    tags = list(service.tags)
    check = service.health_check
    shared = None if check is None else _check_settings(check)
    definitions: list[dict[str, Any]] = []
    for endpoint in service.endpoints:
        definition: dict[str, Any] = {
            "ID": endpoint.id,
            "Name": service.name,
            "Address": endpoint.address,
            "Port": endpoint.port,
            "Tags": tags,
            "Meta": meta,
            "Weights": {"Passing": endpoint.weight, "Warning": WARNING_WEIGHT},
        }
        if check is not None and shared is not None:
            definition["Checks"] = [_check(service, endpoint, check, shared)]
        definitions.append(definition)
    return definitions


def host_port(address: str, port: int) -> str:
    """``address:port``, with an IPv6 address in brackets as Go's net.JoinHostPort writes it."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _check_settings(check: HealthCheck) -> dict[str, Any]:
    """The part of a check that is the same for every instance of the service."""
    settings: dict[str, Any] = {}
    if check.kind == "ttl":
        settings["TTL"] = go_duration(check.interval)
    else:
        if check.kind == "grpc":
            settings[GRPC_USE_TLS] = False
        settings["Interval"] = go_duration(check.interval)
        settings["Timeout"] = go_duration(check.timeout)
    if check.deregister_after is not None:
        settings["DeregisterCriticalServiceAfter"] = go_duration(check.deregister_after)
    if check.success_before_passing:
        settings[SUCCESS_BEFORE_PASSING] = check.success_before_passing
    if check.failures_before_critical:
        settings[FAILURES_BEFORE_CRITICAL] = check.failures_before_critical
    return settings


def _check(
    service: Service, endpoint: Endpoint, check: HealthCheck, settings: dict[str, Any]
) -> dict[str, Any]:
    definition: dict[str, Any] = {"Name": f"{service.name} {check.kind} health ({endpoint.id})"}
    if check.kind != "ttl":
        target = host_port(endpoint.address, endpoint.port)
        if check.kind == "http":
            definition["HTTP"] = f"http://{target}{check.target or '/'}"
        elif check.kind == "grpc":
            definition["GRPC"] = f"{target}/{check.target}" if check.target else target
        else:
            definition["TCP"] = target
    definition.update(settings)
    return definition
