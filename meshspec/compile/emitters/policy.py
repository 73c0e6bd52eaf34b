"""``policy.json``: the runtime's PolicyDocument (each caller's upstreams, endpoints, policies)."""

from __future__ import annotations

from typing import Any

from meshspec_runtime.bundle import BUNDLE_FORMAT, Endpoint

from meshspec.compile import stamp
from meshspec.compile.ir import ResolvedMesh
from meshspec.compile.jsonfile import dump_json

PATH = "policy.json"


def emit(mesh: ResolvedMesh) -> dict[str, bytes]:
    return {PATH: dump_json(document(mesh))}


def document(mesh: ResolvedMesh) -> dict[str, Any]:
    """The PolicyDocument as plain JSON data, built without re-validating the IR's models.

    Edges share policy objects (most use the defaults) and every caller of a service shares its
    endpoints, so each is dumped once and the dumps are reused.
    """
    policies: dict[int, dict[str, Any]] = {}  # by id: the IR shares equal policies
    endpoints = {
        service.name: [_endpoint(endpoint) for endpoint in service.endpoints]
        for service in mesh.services
    }
    services: dict[str, Any] = {}
    for service in mesh.services:
        upstreams: dict[str, Any] = {}
        for edge in service.edges:
            dumped = policies.get(id(edge.policy))
            if dumped is None:
                dumped = policies[id(edge.policy)] = edge.policy.model_dump(mode="json")
            upstreams[edge.upstream] = {
                "service": edge.upstream,
                "endpoints": endpoints[edge.upstream],
                "policy": dumped,
            }
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
        "services": services,
    }


def _endpoint(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "address": endpoint.address,
        "port": endpoint.port,
        "weight": endpoint.weight,
    }
