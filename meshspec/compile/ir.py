"""The resolved mesh: what every emitter reads.

Built once from a validated spec with every default and environment overlay applied, then never
changed. Plain frozen dataclasses (not pydantic models): the values come from models that were
already validated, so building the IR costs no second validation pass, which matters for meshes
of tens of thousands of services. Sequences are tuples sorted by name, so every emitter that
walks them writes its files in one deterministic order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.layout import bucket_count, index_count
from meshspec_runtime.policy.config import UpstreamPolicy

from meshspec.spec.resolve import DEFAULT_ALERT_AFTER

Protocol = Literal["http", "grpc", "tcp"]
CheckKind = Literal["http", "grpc", "tcp", "ttl"]


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """One service's health check, applied to each of its instances."""

    kind: CheckKind
    target: str | None
    """``http``: the path (``/healthz``); ``grpc``: the gRPC service name or None; else None."""
    interval: float
    """Seconds between probes; for ``ttl``, the TTL."""
    timeout: float
    deregister_after: float | None
    """Seconds in critical state after which Consul deregisters the instance; None: never."""
    success_before_passing: int = 0
    failures_before_critical: int = 0


@dataclass(frozen=True, slots=True)
class Edge:
    """What one caller applies to one upstream."""

    upstream: str
    policy: UpstreamPolicy
    objective: float
    """Success-ratio objective of the edge (0.999: at most 0.1% of calls may fail)."""
    alert_after: float = DEFAULT_ALERT_AFTER
    """Seconds the error ratio must stay above the objective before the alert fires."""


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    port: int
    protocol: Protocol
    tags: tuple[str, ...]
    meta: tuple[tuple[str, str], ...]
    """Sorted by key."""
    endpoints: tuple[Endpoint, ...]
    """The service's instances, in spec order (ids are unique within the service)."""
    health_check: HealthCheck | None
    edges: tuple[Edge, ...]
    """Sorted by upstream name."""


@dataclass(frozen=True, slots=True)
class ResolvedMesh:
    name: str
    datacenter: str
    zone: str
    """DNS zone without the trailing dot, e.g. ``shop.mesh.internal``."""
    dns_ttl: int
    """Seconds."""
    services: tuple[Service, ...]
    """Sorted by name."""

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    def buckets(self) -> int:
        """How many buckets the bundle groups the services' views into."""
        return bucket_count(len(self.services))

    def indexes(self) -> int:
        """How many index files list the bundle's files (and Consul files group services)."""
        return index_count(len(self.services))

    def endpoints_by_service(self) -> dict[str, tuple[Endpoint, ...]]:
        return {service.name: service.endpoints for service in self.services}
