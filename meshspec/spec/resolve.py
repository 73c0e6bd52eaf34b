"""Resolve the policies of a validated spec, layer by layer, into the runtime's models.

API (used by the compiler and the simulator)::

    edge_policy(spec, caller, upstream) -> meshspec_runtime.policy.config.UpstreamPolicy
    edge_objective(spec, caller, upstream) -> float        # success-rate SLO, a fraction
    health_check(spec, service) -> ResolvedHealthCheck | None

An edge's policy is merged from three layers, field by field: the mesh ``defaults``, the
caller's ``services.<caller>.defaults``, and the edge ``services.<caller>.upstreams.<name>``.
A mapping merges onto a mapping; any other value replaces; ``off`` switches a policy off,
and a later mapping for it starts again from the runtime's built-in defaults. A breaker's
``window`` is replaced as a whole. Fields set nowhere take the runtime model's defaults.

:func:`merged_edge` also tells, for each resolved field, which layer set it, so the semantic
pass can point at the line that set an offending value.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Literal

from meshspec_runtime.policy.config import UpstreamPolicy
from pydantic import BaseModel, ConfigDict

from meshspec.spec.models import OFF, EdgePolicySpec, HealthCheckSpec, MeshSpec

SpecPath = tuple[str | int, ...]
DEFAULT_OBJECTIVE = 0.999
DEFAULT_ALERT_AFTER = 300.0
"""Seconds an edge's error ratio stays above its objective before the alert fires."""
# Keys whose mapping value is replaced whole rather than merged (a count window and a time
# window do not mix).
_REPLACED_WHOLE = frozenset({"window"})


@dataclass(slots=True)
class MergedLayers:
    """Values merged from several layers, with the layer that set each one."""

    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[SpecPath, SpecPath] = field(default_factory=dict)
    """Path of a merged value (or switched-off policy) -> the path of the layer that set it."""

    def origin(self, path: SpecPath) -> SpecPath | None:
        """Full spec path of the field that set ``path`` (or its nearest set parent)."""
        for cut in range(len(path), 0, -1):
            layer = self.origins.get(path[:cut])
            if layer is not None:
                return layer + path
        return None


def _merge(
    target: dict[str, Any],
    layer: dict[str, Any],
    layer_path: SpecPath,
    origins: dict[SpecPath, SpecPath] | None,
    at: SpecPath = (),
) -> None:
    """Merge ``layer`` onto ``target``; with ``origins``, record which layer set what."""
    for key, value in layer.items():
        here = (*at, key)
        current = target.get(key)
        if isinstance(value, dict) and isinstance(current, dict) and key not in _REPLACED_WHOLE:
            _merge(current, value, layer_path, origins, here)
            continue
        target[key] = _copy(value)
        if origins is not None:
            for path in [p for p in origins if p[: len(here)] == here]:
                del origins[path]
            _record(value, here, layer_path, origins)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return list(value)
    return value


def _record(
    value: Any, here: SpecPath, layer_path: SpecPath, origins: dict[SpecPath, SpecPath]
) -> None:
    origins[here] = layer_path
    if isinstance(value, dict):
        for key, child in value.items():
            _record(child, (*here, key), layer_path, origins)


def merge_layers(
    layers: list[tuple[SpecPath, BaseModel | None]], exclude: set[str]
) -> MergedLayers:
    merged = MergedLayers()
    for layer_path, layer in layers:
        if layer is None:
            continue
        dumped = layer.model_dump(exclude_none=True, exclude=exclude)
        _merge(merged.values, dumped, layer_path, merged.origins)
    return merged


def edge_layers(spec: MeshSpec, caller: str) -> list[tuple[SpecPath, BaseModel | None]]:
    """The layers of ``caller``'s edges, least specific first (the edge itself excluded)."""
    return [
        (("defaults",), spec.defaults),
        (("services", caller, "defaults"), spec.services[caller].defaults),
    ]


def merged_edge(spec: MeshSpec, caller: str, upstream: str) -> MergedLayers:
    """The edge's policy fields merged over its three layers (not yet lowered)."""
    edge: EdgePolicySpec | None = spec.services[caller].upstreams[upstream]
    layers = [*edge_layers(spec, caller), (("services", caller, "upstreams", upstream), edge)]
    return merge_layers(layers, exclude={"health_check", "lint"})


def lower_edge(values: dict[str, Any]) -> dict[str, Any]:
    """Merged spec values -> keyword arguments of the runtime's UpstreamPolicy."""
    out: dict[str, Any] = {}
    if "timeout" in values:
        out["timeout"] = values["timeout"]
    retry = values.get("retry")
    if retry == OFF:
        out["retry"] = {"attempts": 1}
    elif isinstance(retry, dict):
        out["retry"] = _without_off(retry, ("per_try_timeout", "budget", "stop_above"))
    for name in ("adaptive_throttle", "outlier_detection"):
        if isinstance(values.get(name), dict):
            out[name] = values[name]
    breaker = values.get("circuit_breaker")
    if isinstance(breaker, dict):
        out["circuit_breaker"] = _without_off(breaker, ("slow_calls", "open_for_max"))
    if isinstance(values.get("load_balancer"), dict):
        out["load_balancer"] = values["load_balancer"]
    limit = values.get("concurrency_limit")
    if isinstance(limit, int):
        out["concurrency_limit"] = limit
    hedge = values.get("hedge")
    if isinstance(hedge, dict):
        out["hedge"] = {
            key: tuple(value) if key == "non_fatal" else value for key, value in hedge.items()
        }
    return out


def _without_off(values: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    lowered = {key: value for key, value in values.items() if not (key in names and value == OFF)}
    for key in ("on", "failure_on"):
        if key in lowered:
            lowered[key] = tuple(lowered[key])
    return lowered


class Resolver:
    """Resolves every edge of one spec quickly: the spec is dumped once, each caller's base
    layers are merged once, and the runtime policy is built once per distinct merged value
    (a large mesh has many edges but few distinct policies)."""

    def __init__(self, spec: MeshSpec) -> None:
        # The spec keeps its resolver (``of``): a strong reference back would make a cycle,
        # and then a compile's whole spec (hundreds of MB for a large mesh) would wait for
        # the cyclic collector instead of going as soon as the compile drops it.
        self._spec = weakref.ref(spec)
        policies = {"__all__": {"defaults", "upstreams", "health_check"}}
        self._services: dict[str, Any] = spec.model_dump(
            exclude_none=True, include={"services": policies}
        )["services"]
        for service in self._services.values():  # lint facts are not policy
            for edge in service.get("upstreams", {}).values():
                if isinstance(edge, dict):
                    edge.pop("lint", None)
        self._defaults: dict[str, Any] = spec.defaults.model_dump(
            exclude_none=True, exclude={"health_check"}
        )
        self._bases: dict[str, tuple[str, dict[str, Any]]] = {}
        self._keys: dict[tuple[str, str], tuple[str, str]] = {}
        self._values: dict[tuple[str, str], dict[str, Any]] = {}
        self._policies: dict[tuple[str, str], UpstreamPolicy] = {}
        self._health_values: dict[str, dict[str, Any]] = {}
        self._health: dict[str, ResolvedHealthCheck | None] = {}

    def __reduce__(self) -> tuple[Any, ...]:
        # A cache, not data: a pickled or deep-copied spec makes its own when it needs one
        # (and a weak reference cannot be pickled).
        return type(None), ()

    @property
    def spec(self) -> MeshSpec:
        spec = self._spec()
        if spec is None:
            raise RuntimeError("the spec this resolver was made for no longer exists")
        return spec

    @classmethod
    def of(cls, spec: MeshSpec) -> Resolver:
        """The spec's resolver, made on first use and kept with the spec."""
        resolver = spec._resolver
        # a model_copy carries private attributes along: never trust another spec's cache
        if not isinstance(resolver, Resolver) or resolver._spec() is not spec:
            resolver = cls(spec)
            spec._resolver = resolver
        return resolver

    def _base(self, caller: str) -> tuple[str, dict[str, Any]]:
        found = self._bases.get(caller)
        if found is None:
            own = self._services[caller].get("defaults")
            if not own:
                found = ("", self._defaults)
            else:
                values = _copy(self._defaults)
                _merge(values, own, (), None)
                found = (_key(own), values)
            self._bases[caller] = found
        return found

    def key(self, caller: str, upstream: str) -> tuple[str, str]:
        """Equal keys mean equal merged values. Kept per edge: the semantic checks and the
        compiler each ask for every edge, and the lookups below ask again."""
        found = self._keys.get((caller, upstream))
        if found is None:
            edge = self._services[caller]["upstreams"].get(upstream)
            found = self._keys[caller, upstream] = (
                self._base(caller)[0],
                _key(edge) if edge else "",
            )
        return found

    def values(self, caller: str, upstream: str) -> dict[str, Any]:
        """The merged (not yet lowered) policy values of the edge; do not modify."""
        key = self.key(caller, upstream)
        values = self._values.get(key)
        if values is None:
            base = self._base(caller)[1]
            edge = self._services[caller]["upstreams"].get(upstream)
            if edge:
                values = _copy(base)
                _merge(values, edge, (), None)
            else:
                values = base
            self._values[key] = values
        return values

    def policy(self, caller: str, upstream: str) -> UpstreamPolicy:
        key = self.key(caller, upstream)
        policy = self._policies.get(key)
        if policy is None:
            policy = UpstreamPolicy.model_validate(lower_edge(self.values(caller, upstream)))
            self._policies[key] = policy
        return policy

    def health_key(self, service: str) -> str:
        """Equal keys mean equal merged health checks."""
        own = self._services[service].get("health_check")
        return _key(own) if own is not None else ""

    def health_values(self, service: str) -> dict[str, Any]:
        key = self.health_key(service)
        values = self._health_values.get(key)
        if values is None:
            values = self._health_values[key] = merged_health_check(self.spec, service).values
        return values

    def health(self, service: str) -> ResolvedHealthCheck | None:
        key = self.health_key(service)
        if key not in self._health:
            self._health[key] = lower_health_check(self.health_values(service))
        return self._health[key]


def _key(values: Any) -> str:
    # model_dump writes fields in declaration order, so equal layers give equal reprs
    return repr(values)


def edge_policy(spec: MeshSpec, caller: str, upstream: str) -> UpstreamPolicy:
    """The fully resolved policy that ``caller`` applies to ``upstream``.

    Raises ``pydantic.ValidationError`` only for a spec that did not pass
    :func:`meshspec.spec.load_spec` (which reports such conflicts as located diagnostics).
    """
    return Resolver.of(spec).policy(caller, upstream)


def edge_objective(spec: MeshSpec, caller: str, upstream: str) -> float:
    """The edge's success-rate objective as a fraction (default 99.9%)."""
    objective = Resolver.of(spec).values(caller, upstream).get("objective", {})
    rate = objective.get("success_rate") if isinstance(objective, dict) else None
    return float(rate) if rate is not None else DEFAULT_OBJECTIVE


# --- health checks --------------------------------------------------------------------------

DEFAULT_INTERVAL = 10.0
DEFAULT_TIMEOUT = 2.0
HEALTH_CHECK_KINDS = ("http", "tcp", "grpc", "ttl")


class ResolvedHealthCheck(BaseModel):
    """A service's health check after merging the mesh default with the service's own."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["http", "tcp", "grpc", "ttl"]
    target: str | None
    """http: the path; grpc: the health service name ("" = whole server); else None."""
    interval: float
    """Seconds between checks (for ttl: unused by Consul, kept for the simulator)."""
    timeout: float
    ttl: float | None
    """ttl checks: the instance must report at least this often."""
    deregister_after: float | None
    """Seconds critical before the instance is deregistered; None: never."""
    success_threshold: int
    failure_threshold: int


def merged_health_check(spec: MeshSpec, service: str) -> MergedLayers:
    """The health check fields merged over the mesh default and the service's own.

    A layer that names a kind (http, tcp, grpc, ttl) replaces the inherited kind; ``off``
    (kept as the value of the key ``"off"``) switches the check off.
    """
    merged = MergedLayers()
    layers: list[tuple[SpecPath, HealthCheckSpec | str | None]] = [
        (("defaults", "health_check"), spec.defaults.health_check),
        (("services", service, "health_check"), spec.services[service].health_check),
    ]
    for layer_path, layer in layers:
        if layer is None:
            continue
        if layer == OFF:
            merged.values = {OFF: True}
            merged.origins = {(OFF,): layer_path}
            continue
        if not isinstance(layer, HealthCheckSpec):
            continue
        merged.values.pop(OFF, None)
        dumped = layer.model_dump(exclude_none=True)
        if any(kind in dumped for kind in HEALTH_CHECK_KINDS):
            for kind in HEALTH_CHECK_KINDS:
                merged.values.pop(kind, None)
                merged.origins.pop((kind,), None)
        _merge(merged.values, dumped, layer_path, merged.origins)
    return merged


def lower_health_check(values: dict[str, Any]) -> ResolvedHealthCheck | None:
    if not values or OFF in values:
        return None
    kind = next((k for k in HEALTH_CHECK_KINDS if k in values), None)
    if kind is None:
        return None
    interval = float(values.get("interval", DEFAULT_INTERVAL))
    timeout = float(values.get("timeout", min(DEFAULT_TIMEOUT, interval / 2)))
    deregister = values.get("deregister_after")
    target = values[kind] if kind in ("http", "grpc") else None
    return ResolvedHealthCheck(
        kind=kind,  # type: ignore[arg-type]
        target=target,
        interval=interval,
        timeout=timeout,
        ttl=values["ttl"] if kind == "ttl" else None,
        deregister_after=None if deregister in (None, OFF) else float(deregister),
        success_threshold=values.get("success_threshold", 1),
        failure_threshold=values.get("failure_threshold", 1),
    )


def health_check(spec: MeshSpec, service: str) -> ResolvedHealthCheck | None:
    """The service's resolved health check, or None when it has none (or it is off)."""
    return Resolver.of(spec).health(service)
