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

import re
from operator import itemgetter
from typing import Any

import orjson
from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.layout import bucket_name, bucket_of

from meshspec.compile import stamp
from meshspec.compile.durations import go_duration
from meshspec.compile.ir import HealthCheck, ResolvedMesh, Service

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
    grouped: dict[int, list[bytes]] = {}
    for service in mesh.services:
        grouped.setdefault(bucket_of(service.name, count), []).extend(encoded(mesh, service))
    return {
        f"{FOLDER}/{bucket_name(bucket)}.json": b'{"services":['
        + b",".join(grouped[bucket])
        + b"]}\n"
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
    return [_definition(service, endpoint, tags, meta, shared) for endpoint in service.endpoints]


# What differs between a service's instances, as placeholders in the encoded definition that a
# service's instances share (``encoded``). A NUL is in no name or text the spec accepts.
_ADDRESS, _ID, _PORT, _WEIGHT, _CHECK_NAME, _TARGET = (
    f"\0{field}\0" for field in ("address", "id", "port", "weight", "check-name", "target")
)
_SLOTS = (_ADDRESS, _ID, _PORT, _WEIGHT, _CHECK_NAME, _TARGET)
_SLOT_JSON = re.compile(b"|".join(re.escape(orjson.dumps(slot)) for slot in _SLOTS))
_SLOT_OF_JSON = {orjson.dumps(slot): slot for slot in _SLOTS}


def encoded(mesh: ResolvedMesh, service: Service) -> list[bytes]:
    """``definitions`` as the bundle writes each (compact JSON, keys sorted), encoded once per
    service with placeholders and filled in per instance: 80,000 definitions at 20,000 services
    were 80,000 dicts built, sorted and freed."""
    meta = dict(service.meta)
    meta[VERSION_META] = stamp.VERSION
    meta[MESH_META] = mesh.name
    check = service.health_check
    shared = None if check is None else _check_settings(check)
    model: dict[str, Any] = {
        "ID": _ID,
        "Name": service.name,
        "Address": _ADDRESS,
        "Port": _PORT,
        "Tags": list(service.tags),
        "Meta": meta,
        "Weights": {"Passing": _WEIGHT, "Warning": WARNING_WEIGHT},
    }
    if check is not None and shared is not None:
        model["Checks"] = [_check_model(service, check, shared)]
    encoded_model = orjson.dumps(model, option=orjson.OPT_SORT_KEYS)
    slots = [_SLOTS.index(_SLOT_OF_JSON[found]) for found in _SLOT_JSON.findall(encoded_model)]
    if sorted(slots) != list(range(_slot_count(check))):
        # a placeholder inside the spec's own text: cannot happen (no NUL passes the
        # models), but never guess
        return [orjson.dumps(d, option=orjson.OPT_SORT_KEYS) for d in definitions(mesh, service)]
    pieces = [piece.replace(b"%", b"%%") for piece in _SLOT_JSON.split(encoded_model)]
    template = b"%s".join(pieces)
    in_order = itemgetter(*slots)
    dumps = orjson.dumps
    if check is None:
        return [
            template % in_order((dumps(e.address), dumps(e.id), b"%d" % e.port, b"%d" % e.weight))
            for e in service.endpoints
        ]
    return [
        template
        % in_order(
            (
                dumps(e.address),
                dumps(e.id),
                b"%d" % e.port,
                b"%d" % e.weight,
                dumps(_check_name(service, e, check)),
                dumps(_target(e, check)) if check.kind != "ttl" else b"",
            )
        )
        for e in service.endpoints
    ]


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


def _definition(
    service: Service,
    endpoint: Endpoint,
    tags: list[str],
    meta: dict[str, str],
    shared: dict[str, Any] | None,
) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "ID": endpoint.id,
        "Name": service.name,
        "Address": endpoint.address,
        "Port": endpoint.port,
        "Tags": tags,
        "Meta": meta,
        "Weights": {"Passing": endpoint.weight, "Warning": WARNING_WEIGHT},
    }
    check = service.health_check
    if check is not None and shared is not None:
        definition["Checks"] = [_check(service, endpoint, check, shared)]
    return definition


def _check(
    service: Service, endpoint: Endpoint, check: HealthCheck, settings: dict[str, Any]
) -> dict[str, Any]:
    definition: dict[str, Any] = {"Name": _check_name(service, endpoint, check)}
    if check.kind != "ttl":
        definition[_TARGET_KEYS[check.kind]] = _target(endpoint, check)
    definition.update(settings)
    return definition


def _check_model(service: Service, check: HealthCheck, settings: dict[str, Any]) -> dict[str, Any]:
    """``_check`` with placeholders for what differs between instances."""
    definition: dict[str, Any] = {"Name": _CHECK_NAME}
    if check.kind != "ttl":
        definition[_TARGET_KEYS[check.kind]] = _TARGET
    definition.update(settings)
    return definition


_TARGET_KEYS = {"http": "HTTP", "grpc": "GRPC", "tcp": "TCP"}


def _check_name(service: Service, endpoint: Endpoint, check: HealthCheck) -> str:
    return f"{service.name} {check.kind} health ({endpoint.id})"


def _target(endpoint: Endpoint, check: HealthCheck) -> str:
    target = host_port(endpoint.address, endpoint.port)
    if check.kind == "http":
        return f"http://{target}{check.target or '/'}"
    if check.kind == "grpc":
        return f"{target}/{check.target}" if check.target else target
    return target


def _slot_count(check: HealthCheck | None) -> int:
    if check is None:
        return 4
    return 5 if check.kind == "ttl" else 6
