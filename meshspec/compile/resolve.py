"""A validated spec -> the resolved mesh (IR) every emitter reads.

The spec language resolves each edge's policy and each service's health check
(``meshspec.spec.resolve``); this module assembles those into the immutable IR, sorted by
name. Endpoints are built by validating the spec's already checked values once more: pydantic's
validator (in Rust) is about twice as fast as ``model_construct`` (in Python), and it keeps the
runtime model's own constraints in force.
"""

from __future__ import annotations

from typing import Any

from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.policy.config import UpstreamPolicy

from meshspec.compile.ir import Edge, HealthCheck, ResolvedMesh, Service
from meshspec.spec import EdgePolicySpec, MeshSpec, ServiceSpec
from meshspec.spec.resolve import (
    DEFAULT_ALERT_AFTER,
    DEFAULT_OBJECTIVE,
    ResolvedHealthCheck,
    health_check,
    lower_edge,
    merged_edge,
)


def resolve_mesh(spec: MeshSpec) -> ResolvedMesh:
    edges = _EdgeResolver(spec)
    return ResolvedMesh(
        name=spec.mesh.name,
        datacenter=spec.mesh.datacenter,
        zone=spec.mesh.dns.zone.rstrip("."),
        dns_ttl=int(spec.mesh.dns.ttl),
        services=tuple(_service(spec, name, edges) for name in sorted(spec.services)),
    )


def _service(spec: MeshSpec, name: str, edges: _EdgeResolver) -> Service:
    service = spec.services[name]
    check = health_check(spec, name)
    return Service(
        name=name,
        port=service.port,
        protocol=service.protocol,
        tags=tuple(service.tags),
        meta=tuple(sorted(service.meta.items())),
        endpoints=endpoints(name, service),
        health_check=None if check is None else _health_check(check),
        edges=tuple(edges.resolve(name, upstream) for upstream in sorted(service.upstreams)),
    )


def endpoints(name: str, service: ServiceSpec) -> tuple[Endpoint, ...]:
    return tuple(
        Endpoint(
            id=instance.id if instance.id is not None else f"{name}-{index}",
            address=instance.address,
            port=instance.port if instance.port is not None else service.port,
            weight=instance.weight,
        )
        for index, instance in enumerate(service.instances)
    )


class _EdgeResolver:
    """Resolves edges, once per distinct (caller defaults, edge override) pair.

    An edge's policy is a function of three layers: the mesh defaults (one per spec), the
    caller's defaults and the edge's override. Large meshes repeat a few override styles
    thousands of times, so each distinct pair is merged and validated once and its policy
    object shared (the policy emitter then dumps it once too). One merge gives both the policy
    and the objective; edge_policy and edge_objective would each merge again.
    """

    def __init__(self, spec: MeshSpec) -> None:
        self._spec = spec
        self._resolved: dict[
            tuple[str | None, str | None], tuple[UpstreamPolicy, float, float]
        ] = {}

    def resolve(self, caller: str, upstream: str) -> Edge:
        service = self._spec.services[caller]
        key = (_fingerprint(service.defaults), _fingerprint(service.upstreams[upstream]))
        found = self._resolved.get(key)
        if found is None:
            values = merged_edge(self._spec, caller, upstream).values
            found = (UpstreamPolicy.model_validate(lower_edge(values)), *_objective(values))
            self._resolved[key] = found
        return Edge(upstream, *found)


def _fingerprint(layer: EdgePolicySpec | None) -> str | None:
    return None if layer is None else layer.model_dump_json(exclude_none=True)


def _objective(values: dict[str, Any]) -> tuple[float, float]:
    """The edge's success-rate objective and how long it may be missed before alerting."""
    objective = values.get("objective")
    if not isinstance(objective, dict):
        return DEFAULT_OBJECTIVE, DEFAULT_ALERT_AFTER
    rate = objective.get("success_rate")
    after = objective.get("alert_after")
    return (
        float(rate) if rate is not None else DEFAULT_OBJECTIVE,
        float(after) if after is not None else DEFAULT_ALERT_AFTER,
    )


def _health_check(check: ResolvedHealthCheck) -> HealthCheck:
    return HealthCheck(
        kind=check.kind,
        target=check.target,
        interval=check.ttl if check.kind == "ttl" and check.ttl is not None else check.interval,
        timeout=check.timeout,
        deregister_after=check.deregister_after,
        success_before_passing=check.success_threshold,
        failures_before_critical=check.failure_threshold,
    )
