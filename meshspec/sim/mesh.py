"""The part of a mesh spec the simulator needs, resolved: services, endpoints, edge policies.

:func:`mesh_from_spec` lowers a loaded spec through the spec language's own resolvers, so the
simulated callers get exactly the :class:`UpstreamPolicy` the compiler would put in a bundle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.policy.config import UpstreamPolicy


@dataclass(frozen=True, slots=True)
class HealthModel:
    """What decides how fast a failed instance leaves discovery."""

    interval: float
    failures: int = 1
    """Consecutive failed checks before the instance is marked critical."""
    successes: int = 1
    """Consecutive passing checks before it is marked passing again."""
    timeout: float = 0.0
    """How long a check waits for an answer: a hung instance fails it only then (a crashed
    one refuses the connection at once)."""


@dataclass(frozen=True, slots=True)
class ServiceModel:
    name: str
    endpoints: tuple[Endpoint, ...]
    upstreams: dict[str, UpstreamPolicy] = field(default_factory=dict)
    """Upstream service -> the policy this service applies to it, in spec order."""
    health: HealthModel | None = None
    protocol: Literal["http", "grpc", "tcp"] = "http"


@dataclass(frozen=True, slots=True)
class MeshModel:
    name: str
    services: dict[str, ServiceModel]

    def edges(self) -> list[tuple[str, str]]:
        return [(s.name, u) for s in self.services.values() for u in s.upstreams]


def mesh_from_spec(spec: Any) -> MeshModel:
    """Resolve a loaded ``MeshSpec`` (see :mod:`meshspec.spec`) into a :class:`MeshModel`."""
    from meshspec.spec import resolve

    services: dict[str, ServiceModel] = {}
    for name, service in spec.services.items():
        endpoints = tuple(
            Endpoint(
                id=instance.id or f"{name}-{index}",
                address=instance.address,
                port=instance.port or service.port,
                weight=instance.weight,
            )
            for index, instance in enumerate(service.instances)
        )
        upstreams = {up: resolve.edge_policy(spec, name, up) for up in service.upstreams}
        services[name] = ServiceModel(
            name=name,
            endpoints=endpoints,
            upstreams=upstreams,
            health=_health(resolve.health_check(spec, name)),
            protocol=service.protocol,
        )
    return MeshModel(name=spec.mesh.name, services=services)


def _health(check: Any) -> HealthModel | None:
    if check is None:
        return None
    return HealthModel(
        interval=float(check.interval),
        failures=int(getattr(check, "failure_threshold", getattr(check, "failures", 1)) or 1),
        successes=int(getattr(check, "success_threshold", getattr(check, "successes", 1)) or 1),
        timeout=float(getattr(check, "timeout", 0.0) or 0.0),
    )
