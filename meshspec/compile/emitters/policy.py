"""``policy.json``: the runtime's PolicyDocument, normalised.

Every caller of a service shares its endpoints, and most edges share a policy (the defaults), so
the document lists each service's endpoints once (``endpoints``), stores each distinct resolved
policy once under a content-derived id (``policies``), and gives each service's upstreams as
references to both (``services``). The runtime assembles one service's view with
``PolicyDocument.service(name)``; the compiler also writes each service's view, grouped by
bucket in ``services/<bucket>.json`` (``service_slices``), for services that read only their
own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson
from meshspec_runtime.bundle import BUNDLE_FORMAT, Endpoint
from meshspec_runtime.policy.config import UpstreamPolicy

from meshspec.compile import stamp
from meshspec.compile.emitters.service_slices import buckets
from meshspec.compile.ir import ResolvedMesh, Service
from meshspec.compile.jsonfile import dump_json

PATH = "policy.json"
POLICY_ID_LENGTH = 12
"""Hex digits of a policy id: 48 bits, ample for the few distinct policies of a mesh."""


def emit(mesh: ResolvedMesh) -> dict[str, bytes]:
    """``policy.json``, and each service's view of it, by bucket (``service_slices``)."""
    # each service's endpoints are encoded once, not built as dicts and sorted for
    # policy.json and again for each bucket of a caller
    data = _document(mesh, _encoded_endpoints)
    return {PATH: dump_json(data), **buckets(data, mesh.buckets())}


def policy_id(dumped: dict[str, Any]) -> str:
    """The id of a policy (as JSON data): the first 12 hex digits of the sha256 of its
    canonical JSON (keys sorted, no whitespace, UTF-8)."""
    canonical = orjson.dumps(dumped, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:POLICY_ID_LENGTH]


def document(mesh: ResolvedMesh) -> dict[str, Any]:
    """The PolicyDocument as plain JSON data, built without re-validating the IR's models.

    The IR shares equal policy objects between edges, so each object is dumped and hashed once;
    equal policies held by distinct objects get the same id and are stored once.
    """
    return _document(mesh, lambda service: [_endpoint(e) for e in service.endpoints])


def _document(mesh: ResolvedMesh, endpoints: Callable[[Service], Any]) -> dict[str, Any]:
    ids: dict[int, str] = {}  # id() of a policy object -> its content id
    policies: dict[str, dict[str, Any]] = {}
    services: dict[str, Any] = {}
    for service in mesh.services:
        upstreams: dict[str, Any] = {}
        for edge in service.edges:
            key = ids.get(id(edge.policy))
            if key is None:
                key = ids[id(edge.policy)] = _store(edge.policy, policies)
            upstreams[edge.upstream] = {"service": edge.upstream, "policy": key}
        services[service.name] = {
            "name": service.name,
            "protocol": service.protocol,
            "port": service.port,
            "upstreams": upstreams,
        }
    return {
        "format": BUNDLE_FORMAT,
        "mesh": mesh.name,
        "version": stamp.VERSION,
        "endpoints": {service.name: endpoints(service) for service in mesh.services},
        "policies": policies,
        "services": services,
    }


def _store(policy: UpstreamPolicy, policies: dict[str, dict[str, Any]]) -> str:
    dumped = policy.model_dump(mode="json")
    key = policy_id(dumped)
    stored = policies.setdefault(key, dumped)
    if stored != dumped:  # 48 bits: not expected in the life of the universe, yet never silent
        raise RuntimeError(f"two distinct policies share the id {key}; lengthen POLICY_ID_LENGTH")
    return key


def _encoded_endpoints(service: Service) -> orjson.Fragment:
    """``service``'s endpoints as ``dump_json`` writes them (keys sorted, compact)."""
    dumps = orjson.dumps
    return orjson.Fragment(
        b"["
        + b",".join(
            b'{"address":%s,"id":%s,"port":%d,"weight":%d}'
            % (dumps(e.address), dumps(e.id), e.port, e.weight)
            for e in service.endpoints
        )
        + b"]"
    )


def _endpoint(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "address": endpoint.address,
        "port": endpoint.port,
        "weight": endpoint.weight,
    }
