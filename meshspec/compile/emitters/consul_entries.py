"""``consul/config-entries/<bucket>.json``: the part of each policy Consul's own mesh can express.

- a ``service-defaults`` entry per service: its protocol, and per upstream the connection
  limits (from ``concurrency_limit``) and passive health check (from ``outlier_detection``);
- a ``service-resolver`` entry per upstream: request timeout and load-balancing policy. Consul
  configures these per upstream service, for every caller at once, while the spec sets them per
  edge: a resolver is written only when every caller of the upstream agrees on them.

Entries are grouped as the Consul service definitions are: ``<n>.json`` is
``{"entries": [...]}``, the entries whose service name hashes into n of ``mesh.indexes()``
(``meshspec_runtime.layout.bucket_of``), every ``service-defaults`` first (in name order), then
every ``service-resolver`` (in name order), the order they are written in. One file per entry
made 25,000 files at 20,000 services, and creating them cost more than the whole compile
besides; ``meshspec apply`` writes them through Consul's HTTP API, one entry at a time.

What Consul cannot express (retries and their budgets, circuit breakers, adaptive throttling,
peak_ewma, outlier max ejection time) stays in ``policy.json`` for the runtime; docs/bundle.md
lists it.
"""

from __future__ import annotations

from typing import Any

from meshspec_runtime.layout import bucket_name, bucket_of
from meshspec_runtime.policy.config import LoadBalancerConfig, Strategy, UpstreamPolicy

from meshspec.compile.durations import go_duration
from meshspec.compile.ir import ResolvedMesh, Service
from meshspec.compile.jsonfile import dump_json

FOLDER = "consul/config-entries"
ENTRIES = "entries"
"""The key of a grouped file's list of entries."""

# Envoy's policy names as Consul spells them; peak_ewma has no Consul equivalent.
_CONSUL_LB: dict[Strategy, str] = {
    Strategy.ROUND_ROBIN: "round_robin",
    Strategy.WEIGHTED_ROUND_ROBIN: "round_robin",  # Envoy's round robin honours weights
    Strategy.RANDOM: "random",
    Strategy.LEAST_REQUEST: "least_request",
    Strategy.RING_HASH: "ring_hash",
    Strategy.MAGLEV: "maglev",
}
_CONSUL_PROTOCOL = {"http": "http", "grpc": "grpc", "tcp": "tcp"}
CONSUL_DEFAULT_MAX_RING = 8192
"""Consul's default MaximumRingSize; raised to the minimum when the spec asks for more."""


def emit(mesh: ResolvedMesh) -> dict[str, bytes]:
    count = mesh.indexes()
    grouped: dict[int, list[dict[str, Any]]] = {}
    settings: dict[int, dict[str, Any]] = {}  # id() of a shared policy object -> its override
    for service in mesh.services:  # sorted by name
        entry = service_defaults(service, settings)
        grouped.setdefault(bucket_of(service.name, count), []).append(entry)
    callers_policies: dict[str, list[UpstreamPolicy]] = {}
    for service in mesh.services:
        for edge in service.edges:
            callers_policies.setdefault(edge.upstream, []).append(edge.policy)
    protocols = {service.name: service.protocol for service in mesh.services}
    # The IR shares policy objects between edges, so many upstreams have callers holding the
    # same few objects: each such set is compared and converted once.
    made: dict[tuple[str, frozenset[int]], dict[str, Any] | None] = {}
    for upstream in sorted(callers_policies):
        policies = callers_policies[upstream]
        protocol = protocols.get(upstream, "http")
        key = (protocol, frozenset(map(id, policies)))
        if key not in made:
            made[key] = service_resolver(upstream, policies, protocol)
        resolver = made[key]
        if resolver is not None:
            resolver = {**resolver, "Name": upstream}
            grouped.setdefault(bucket_of(upstream, count), []).append(resolver)
    return {path_of(bucket): dump_json({ENTRIES: grouped[bucket]}) for bucket in sorted(grouped)}


def path_of(bucket: int) -> str:
    return f"{FOLDER}/{bucket_name(bucket)}.json"


def service_defaults(
    service: Service, settings: dict[int, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """``service``'s service-defaults entry. ``settings`` keeps each policy object's override
    settings between calls (the IR shares a few policy objects between many edges)."""
    entry: dict[str, Any] = {
        "Kind": "service-defaults",
        "Name": service.name,
        "Protocol": _CONSUL_PROTOCOL[service.protocol],
    }
    made = {} if settings is None else settings
    overrides = []
    for edge in service.edges:
        found = made.get(id(edge.policy))
        if found is None:
            found = made[id(edge.policy)] = _override_settings(edge.policy)
        if found:
            overrides.append({"Name": edge.upstream, **found})
    if overrides:
        entry["UpstreamConfig"] = {"Overrides": overrides}
    return entry


def _override_settings(policy: UpstreamPolicy) -> dict[str, Any]:
    """An upstream override's settings (without its name): empty when nothing maps."""
    settings: dict[str, Any] = {}
    if policy.concurrency_limit is not None:
        settings["Limits"] = {
            "MaxConnections": policy.concurrency_limit,
            "MaxConcurrentRequests": policy.concurrency_limit,
        }
    outlier = policy.outlier_detection
    if outlier is not None:
        settings["PassiveHealthCheck"] = {
            "MaxFailures": outlier.consecutive_failures,
            "EnforcingConsecutive5xx": 100,
            "MaxEjectionPercent": round(outlier.max_ejected * 100),
            "BaseEjectionTime": go_duration(outlier.base_ejection),
        }
    return settings


def service_resolver(
    upstream: str, policies: list[UpstreamPolicy], protocol: str = "http"
) -> dict[str, Any] | None:
    """The resolver every caller agrees on, or None when they disagree (or nothing maps).

    ``RequestTimeout`` is an HTTP setting (Consul applies it to http and grpc listeners):
    a tcp service's resolver carries only its load balancer, if any.
    """
    first = policies[0]
    if any(
        p is not first and (p.timeout != first.timeout or p.load_balancer != first.load_balancer)
        for p in policies[1:]
    ):
        return None
    entry: dict[str, Any] = {"Kind": "service-resolver", "Name": upstream}
    if protocol != "tcp":
        entry["RequestTimeout"] = go_duration(first.timeout)
    balancer = load_balancer(first.load_balancer)
    if balancer is not None:
        entry["LoadBalancer"] = balancer
    return entry


def load_balancer(config: LoadBalancerConfig) -> dict[str, Any] | None:
    policy = _CONSUL_LB.get(config.strategy)
    if policy is None:
        return None
    balancer: dict[str, Any] = {"Policy": policy}
    if config.strategy is Strategy.LEAST_REQUEST:
        balancer["LeastRequestConfig"] = {"ChoiceCount": config.choices}
    elif config.strategy is Strategy.RING_HASH:
        balancer["RingHashConfig"] = {
            "MinimumRingSize": config.ring_size,
            "MaximumRingSize": max(config.ring_size, CONSUL_DEFAULT_MAX_RING),
        }
    if config.hash_on is not None and config.strategy in (Strategy.RING_HASH, Strategy.MAGLEV):
        # the spec's hash_on names the request header to hash on
        balancer["HashPolicies"] = [{"Field": "header", "FieldValue": config.hash_on}]
    return balancer
