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
from meshspec.spec import MeshSpec, ServiceSpec
from meshspec.spec.resolve import (
    DEFAULT_ALERT_AFTER,
    DEFAULT_OBJECTIVE,
    ResolvedHealthCheck,
    Resolver,
)


def resolve_mesh(spec: MeshSpec) -> ResolvedMesh:
    edges = _EdgeResolver(spec)
    checks = _HealthChecks(spec)
    return ResolvedMesh(
        name=spec.mesh.name,
        datacenter=spec.mesh.datacenter,
        zone=spec.mesh.dns.zone.rstrip("."),
        dns_ttl=int(spec.mesh.dns.ttl),
        services=tuple(_service(spec, name, edges, checks) for name in sorted(spec.services)),
    )


def _service(spec: MeshSpec, name: str, edges: _EdgeResolver, checks: _HealthChecks) -> Service:
    service = spec.services[name]
    return Service(
        name=name,
        port=service.port,
        protocol=service.protocol,
        tags=tuple(service.tags),
        meta=tuple(sorted(service.meta.items())),
        endpoints=endpoints(name, service),
        health_check=checks.of(name),
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
    """Resolves edges, once per distinct merged policy.

    An edge's policy is a function of three layers: the mesh defaults (one per spec), the
    caller's defaults and the edge's override. Large meshes repeat a few override styles
    thousands of times, so the spec's ``Resolver`` (which the semantic checks already filled)
    merges and validates each distinct pair once; its policy object is shared between edges
    (the policy emitter then dumps it once too), and so is the objective read from the same
    merged values.
    """

    def __init__(self, spec: MeshSpec) -> None:
        self._resolver = Resolver.of(spec)
        self._resolved: dict[tuple[str, str], tuple[UpstreamPolicy, float, float]] = {}

    def resolve(self, caller: str, upstream: str) -> Edge:
        resolver = self._resolver
        key = resolver.key(caller, upstream)
        found = self._resolved.get(key)
        if found is None:
            values = resolver.values(caller, upstream)
            found = (resolver.policy(caller, upstream), *_objective(values))
            self._resolved[key] = found
        return Edge(upstream, *found)


class _HealthChecks:
    """Each service's health check, one shared object per distinct check."""

    def __init__(self, spec: MeshSpec) -> None:
        self._resolver = Resolver.of(spec)
        self._made: dict[str, HealthCheck | None] = {}

    def of(self, service: str) -> HealthCheck | None:
        key = self._resolver.health_key(service)
        if key not in self._made:
            check = self._resolver.health(service)
            self._made[key] = None if check is None else _health_check(check)
        return self._made[key]


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
