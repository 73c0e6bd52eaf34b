"""A validated spec -> the resolved mesh (IR) every emitter reads.

The spec language resolves each edge's policy and each service's health check
(``meshspec.spec.resolve``); this module assembles those into the immutable IR, sorted by
name. Endpoints are constructed without a second validation: the spec already checked every
value they hold.
"""

from __future__ import annotations

from typing import Any

from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.policy.config import UpstreamPolicy

from meshspec.compile.ir import Edge, HealthCheck, ResolvedMesh, Service
from meshspec.spec import MeshSpec, ServiceSpec
from meshspec.spec.resolve import (
    DEFAULT_OBJECTIVE,
    ResolvedHealthCheck,
    health_check,
    lower_edge,
    merged_edge,
)


def resolve_mesh(spec: MeshSpec) -> ResolvedMesh:
    return ResolvedMesh(
        name=spec.mesh.name,
        datacenter=spec.mesh.datacenter,
        zone=spec.mesh.dns.zone.rstrip("."),
        dns_ttl=int(spec.mesh.dns.ttl),
        services=tuple(_service(spec, name) for name in sorted(spec.services)),
    )


def _service(spec: MeshSpec, name: str) -> Service:
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
        edges=tuple(_edge(spec, name, upstream) for upstream in sorted(service.upstreams)),
    )


def endpoints(name: str, service: ServiceSpec) -> tuple[Endpoint, ...]:
    return tuple(
        Endpoint.model_construct(
            id=instance.id if instance.id is not None else f"{name}-{index}",
            address=instance.address,
            port=instance.port if instance.port is not None else service.port,
            weight=instance.weight,
        )
        for index, instance in enumerate(service.instances)
    )


def _edge(spec: MeshSpec, caller: str, upstream: str) -> Edge:
    # One merge gives both the policy and the objective (edge_policy and edge_objective would
    # each merge the layers again).
    values = merged_edge(spec, caller, upstream).values
    policy = UpstreamPolicy.model_validate(lower_edge(values))
    return Edge(upstream, policy, _objective(values))


def _objective(values: dict[str, Any]) -> float:
    objective = values.get("objective")
    rate = objective.get("success_rate") if isinstance(objective, dict) else None
    return float(rate) if rate is not None else DEFAULT_OBJECTIVE


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
