"""Checks beyond types, run on a spec that passed the models: names that must exist, the
call graph, duplicates, and rules that hold only after merging the policy layers.

Every check returns located diagnostics through the document's provenance, so a value that
an environment overlay or an inherited default set is reported where it was written.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from meshspec.spec.diagnostics import Diagnostic
from meshspec.spec.document import Provenance
from meshspec.spec.models import DNS_LABEL_PATTERN, OFF, RESERVED_META_PREFIXES, MeshSpec
from meshspec.spec.resolve import (
    HEALTH_CHECK_KINDS,
    MergedLayers,
    Resolver,
    SpecPath,
    lower_health_check,
    merged_edge,
    merged_health_check,
)
from meshspec.spec.units import format_seconds

MIN_DEREGISTER_AFTER = 60.0
_DNS_LABEL = re.compile(DNS_LABEL_PATTERN)


def check(spec: MeshSpec, provenance: Provenance, *, call_graph: bool = True) -> list[Diagnostic]:
    """Every semantic problem of ``spec`` (without the call-graph checks, E0200-E0202, when
    ``call_graph`` is false: they were run on the raw document)."""
    out: list[Diagnostic] = []
    graph = {name: list(service.upstreams) for name, service in spec.services.items()}
    out.extend(_explicit_nulls(spec, provenance))
    if call_graph:
        out.extend(_upstream_names(graph, provenance))
        out.extend(_cycles(graph, provenance))
    out.extend(_instances(spec, provenance))
    out.extend(_dns_names(spec, provenance))
    out.extend(_meta_keys(spec, provenance))
    out.extend(_health_checks(spec, provenance))
    out.extend(_edges(spec, provenance))
    return out


def _explicit_nulls(spec: MeshSpec, provenance: Provenance) -> Iterator[Diagnostic]:
    """``circuit_breaker: null`` would silently inherit; the one way to switch off is ``off``."""
    yield from _nulls(("defaults",), spec.defaults, provenance)
    for name, service in spec.services.items():
        yield from _nulls(("services", name), service, provenance)
        if service.defaults is not None:
            yield from _nulls(("services", name, "defaults"), service.defaults, provenance)
        for upstream, edge in service.upstreams.items():
            if edge is not None:
                yield from _nulls(("services", name, "upstreams", upstream), edge, provenance)


def _nulls(path: SpecPath, layer: BaseModel, provenance: Provenance) -> Iterator[Diagnostic]:
    for field in sorted(layer.model_fields_set & _SWITCHABLE):
        if getattr(layer, field) is None:
            yield provenance.diagnostic(
                (*path, field),
                "E0115",
                f"{field} is null; expected off to switch it off, or no key to inherit",
            )


_SWITCHABLE = frozenset(
    {
        "timeout",
        "retry",
        "adaptive_throttle",
        "circuit_breaker",
        "load_balancer",
        "outlier_detection",
        "concurrency_limit",
        "objective",
        "health_check",
        "defaults",
    }
)


CallGraph = dict[str, list[str]]
"""Service name -> the upstream names it declares."""


def check_call_graph(data: Any, provenance: Provenance) -> list[Diagnostic]:
    """The call-graph checks (E0200-E0202) on a document that failed the models, so that
    one run still reports them beside the type errors. Skipped when the set of services is
    itself in doubt (a service name that is not a DNS label)."""
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict):
        return []
    if not all(isinstance(name, str) and _DNS_LABEL.match(name) for name in services):
        return []
    graph: CallGraph = {}
    for name, service in services.items():
        upstreams = service.get("upstreams") if isinstance(service, dict) else None
        graph[name] = (
            [u for u in upstreams if isinstance(u, str)] if isinstance(upstreams, dict) else []
        )
    return [*_upstream_names(graph, provenance), *_cycles(graph, provenance)]


def _upstream_names(graph: CallGraph, provenance: Provenance) -> Iterator[Diagnostic]:
    names = list(graph)
    for caller, upstreams in graph.items():
        for upstream in upstreams:
            path = ("services", caller, "upstreams", upstream)
            if upstream == caller:
                yield provenance.diagnostic(
                    path, "E0201", f"service {caller!r} names itself as an upstream", key=True
                )
            elif upstream not in graph:
                close = difflib.get_close_matches(upstream, names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                yield provenance.diagnostic(
                    path,
                    "E0200",
                    f"upstream {upstream!r} is not a declared service{hint}",
                    key=True,
                )


def _cycles(declared: CallGraph, provenance: Provenance) -> Iterator[Diagnostic]:
    """Report each call-graph cycle once, at the edge that closes it (iterative DFS)."""
    graph = {
        name: [u for u in upstreams if u in declared and u != name]
        for name, upstreams in declared.items()
    }
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    for root in graph:
        if root in state:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(graph[root]))]
        trail = [root]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                trail.pop()
                state[node] = 2
            elif state.get(child) == 1:
                loop = [*trail[trail.index(child) :], child]
                edges = [("services", a, "upstreams", b) for a, b in itertools.pairwise(loop)]
                # an edge an overlay or --set added is what made the cycle: point there
                overlaid = [edge for edge in edges if provenance.is_overlaid(edge)]
                yield provenance.diagnostic(
                    overlaid[0] if overlaid else edges[-1],
                    "E0202",
                    f"call-graph cycle: {' -> '.join(loop)}; expected an acyclic call graph",
                    key=True,
                )
            elif child not in state:
                state[child] = 1
                trail.append(child)
                stack.append((child, iter(graph[child])))


def _instances(spec: MeshSpec, provenance: Provenance) -> Iterator[Diagnostic]:
    for name, service in spec.services.items():
        seen: dict[tuple[str, int], int] = {}
        ids: dict[str, tuple[int, bool]] = {}
        for index, instance in enumerate(service.instances):
            port = instance.port if instance.port is not None else service.port
            where = ("services", name, "instances", index)
            first = seen.setdefault((instance.address, port), index)
            if first != index:
                yield provenance.diagnostic(
                    (*where, "address"),
                    "E0203",
                    f"instance {instance.address} port {port} is declared twice "
                    f"(first as instances[{first}]); expected unique address and port",
                )
            # the default id counts too, and case does not: the id is a DNS label of the zone
            explicit = instance.id is not None
            effective = instance.id if instance.id is not None else f"{name}-{index}"
            first_id, first_explicit = ids.setdefault(effective.lower(), (index, explicit))
            if first_id != index:
                how = ("" if first_explicit else " by default") + (
                    "" if explicit else ", then by default"
                )
                yield provenance.diagnostic(
                    (*where, "id") if explicit else where,
                    "E0210",
                    f"instance id {effective!r} is used twice (first by instances[{first_id}]"
                    f"{how}); expected ids unique regardless of case",
                )


def _meta_keys(spec: MeshSpec, provenance: Provenance) -> Iterator[Diagnostic]:
    for name, service in spec.services.items():
        for key in service.meta:
            if key.startswith(RESERVED_META_PREFIXES):
                yield provenance.diagnostic(
                    ("services", name, "meta", key),
                    "E0214",
                    f"meta key {key!r} starts with a reserved prefix; expected a key not "
                    f"starting with {' or '.join(map(repr, RESERVED_META_PREFIXES))}",
                    key=True,
                )


MAX_DNS_LABEL = 63
MAX_DNS_NAME = 253
"""RFC 1035: a label holds at most 63 octets, a name 255 on the wire (253 characters as text,
without the final dot)."""


def _dns_names(spec: MeshSpec, provenance: Provenance) -> Iterator[Diagnostic]:
    """Every name the compiled zone holds (``<service>``, ``_<service>._tcp`` and
    ``<instance-id>.<service>`` below the zone) must be a valid DNS name, or no DNS server
    loads the zone."""
    zone = spec.mesh.dns.zone
    longest: tuple[str, ...] = ()
    longest_length = -1  # len(".".join(longest)), kept rather than joined for every name
    for name, service in spec.services.items():
        if len(name) + 1 > MAX_DNS_LABEL:
            yield provenance.diagnostic(
                ("services", name),
                "E0213",
                f"the zone's SRV name for service {name!r} has the label '_{name}', "
                f"{len(name) + 1} characters; expected a service name of at most "
                f"{MAX_DNS_LABEL - 1} characters",
                key=True,
            )
        for index, instance in enumerate(service.instances):
            label = instance.id if instance.id is not None else f"{name}-{index}"
            if len(label) > MAX_DNS_LABEL:
                explicit = instance.id is not None
                yield provenance.diagnostic(
                    ("services", name, "instances", index, "id")
                    if explicit
                    else ("services", name, "instances", index),
                    "E0213",
                    f"instance {'id' if explicit else 'default id'} {label!r} is the zone label "
                    f"of its address record, {len(label)} characters; expected at most "
                    f"{MAX_DNS_LABEL}" + ("" if explicit else " (set a shorter id)"),
                )
            length = len(label) + len(name) + len(zone) + 2
            if length > longest_length:
                longest, longest_length = (label, name, zone), length
        length = len(name) + len(zone) + 7  # _<name>._tcp.<zone>
        if length > longest_length:
            longest, longest_length = (f"_{name}", "_tcp", zone), length
    if len(".".join(longest)) > MAX_DNS_NAME:
        full = ".".join(longest)
        yield provenance.diagnostic(
            ("mesh", "dns", "zone"),
            "E0213",
            f"the zone would hold the name {full!r}, {len(full)} characters; expected names "
            f"of at most {MAX_DNS_NAME} (shorten the zone, the service names or instance ids)",
        )


def _health_checks(spec: MeshSpec, provenance: Provenance) -> Iterator[Diagnostic]:
    yield from _collapse(list(_health_check_problems(spec, provenance)), "service")


def _health_check_problems(spec: MeshSpec, provenance: Provenance) -> Iterator[Diagnostic]:
    resolver = Resolver.of(spec)
    memo: dict[str, list[_Finding]] = {}
    for name in spec.services:
        key = resolver.health_key(name)
        findings = memo.get(key)
        if findings is None:
            findings = memo[key] = _health_findings(resolver.health_values(name))
        if not findings:
            continue
        merged = merged_health_check(spec, name)
        own = spec.services[name].health_check is not None
        fallback: SpecPath = (
            ("services", name, "health_check") if own else ("defaults", "health_check")
        )
        for finding in findings:
            where = _most_specific(merged, finding.fields, provenance) or fallback
            yield provenance.diagnostic(where, finding.code, finding.message.format(service=name))


def _health_findings(values: dict[str, Any]) -> list[_Finding]:
    if not values or OFF in values:
        return []
    if not any(kind in values for kind in HEALTH_CHECK_KINDS):
        return [
            _Finding(
                "E0116",
                (),
                "the health check of {service} has no kind; expected one of http, tcp, grpc, "
                "ttl (here or in defaults.health_check)",
            )
        ]
    resolved = lower_health_check(values)
    findings: list[_Finding] = []
    if resolved is None:
        return findings
    if resolved.kind != "ttl" and resolved.timeout >= resolved.interval:
        findings.append(
            _Finding(
                "E0204",
                (("timeout",), ("interval",)),
                f"health check timeout ({format_seconds(resolved.timeout)}) is not below its "
                f"interval ({format_seconds(resolved.interval)}) for service {{service}}",
            )
        )
    after = resolved.deregister_after
    if after is not None and after < MIN_DEREGISTER_AFTER:
        findings.append(
            _Finding(
                "E0205",
                (("deregister_after",),),
                f"deregister_after is {format_seconds(after)} for service {{service}}; "
                "expected at least 1m (Consul's minimum)",
            )
        )
    return findings


@dataclass(frozen=True, slots=True)
class _Finding:
    code: str
    fields: tuple[SpecPath, ...]
    """The conflicting fields; the one set by the most specific layer is reported."""
    message: str
    """With ``{edge}`` standing for the edge's name."""


def _edges(spec: MeshSpec, provenance: Provenance) -> Iterator[Diagnostic]:
    resolver = Resolver.of(spec)
    memo: dict[tuple[str, str], list[_Finding]] = {}
    out: list[Diagnostic] = []
    for caller, service in spec.services.items():
        for upstream in service.upstreams:
            if upstream not in spec.services or upstream == caller:
                continue
            key = resolver.key(caller, upstream)
            findings = memo.get(key)
            if findings is None:
                findings = memo[key] = _edge_findings(resolver, caller, upstream)
            if not findings:
                continue
            # only an edge with a problem pays for tracking which layer set each value
            merged = merged_edge(spec, caller, upstream)
            edge_path: SpecPath = ("services", caller, "upstreams", upstream)
            for finding in findings:
                where = _most_specific(merged, finding.fields, provenance) or edge_path
                out.append(
                    provenance.diagnostic(
                        where,
                        finding.code,
                        finding.message.format(edge=f"{caller} -> {upstream}"),
                        key=where == edge_path,
                    )
                )
    yield from _collapse(out, "edge")


def _collapse(diagnostics: list[Diagnostic], noun: str) -> Iterator[Diagnostic]:
    """One diagnostic per place and code: an inherited mistake is reported once, with the
    number of other edges (or services) it breaks."""
    groups: dict[tuple[str, int, int, str], list[Diagnostic]] = {}
    for diagnostic in diagnostics:
        place = (diagnostic.file, diagnostic.line, diagnostic.column, diagnostic.code)
        groups.setdefault(place, []).append(diagnostic)
    for group in groups.values():
        first = group[0]
        if len(group) == 1:
            yield first
            continue
        others = len(group) - 1
        yield Diagnostic(
            first.file,
            first.line,
            first.column,
            first.code,
            first.path,
            f"{first.message} (and {others} other {noun}{'s' if others > 1 else ''})",
            first.severity,
        )


def _edge_findings(resolver: Resolver, caller: str, upstream: str) -> list[_Finding]:
    values = resolver.values(caller, upstream)
    findings: list[_Finding] = []
    retry = values.get("retry")
    timeout = values.get("timeout", 2.0)
    if isinstance(retry, dict):
        per_try = retry.get("per_try_timeout")
        if isinstance(per_try, float) and per_try > timeout:
            findings.append(
                _Finding(
                    "E0207",
                    (("retry", "per_try_timeout"), ("timeout",)),
                    f"retry.per_try_timeout ({format_seconds(per_try)}) is above the call's "
                    f"timeout ({format_seconds(timeout)}) on edge {{edge}}; expected at most "
                    "the timeout",
                )
            )
        backoff = retry.get("backoff")
        if isinstance(backoff, dict) and backoff.get("base", 0.025) > backoff.get("max", 1.0):
            findings.append(
                _Finding(
                    "E0208",
                    (("retry", "backoff", "base"), ("retry", "backoff", "max")),
                    f"retry.backoff.base ({format_seconds(backoff.get('base', 0.025))}) is above "
                    f"its max ({format_seconds(backoff.get('max', 1.0))}) on edge {{edge}}",
                )
            )
    breaker = values.get("circuit_breaker")
    if isinstance(breaker, dict):
        findings.extend(_breaker_findings(breaker))
    hedge = values.get("hedge")
    if isinstance(hedge, dict) and "delay" not in hedge:
        findings.append(
            _Finding(
                "E0215",
                (("hedge",),),
                "hedge needs 'delay' (a duration, about the edge's p95 latency) on edge {edge}",
            )
        )
    if findings:
        return findings
    try:
        resolver.policy(caller, upstream)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        reason = first["msg"].removeprefix("Value error, ").replace("{", "{{").replace("}", "}}")
        findings.append(
            _Finding("E0212", (), f"the resolved policy of edge {{edge}} is invalid: {reason}")
        )
    return findings


def _breaker_findings(breaker: dict[str, Any]) -> list[_Finding]:
    findings: list[_Finding] = []
    window = breaker.get("window", {"kind": "count", "size": 100})
    minimum = breaker.get("minimum_calls", 20)
    if window.get("kind") == "count" and minimum > window.get("size", 100):
        findings.append(
            _Finding(
                "E0206",
                (("circuit_breaker", "minimum_calls"), ("circuit_breaker", "window")),
                f"circuit_breaker.minimum_calls ({minimum}) is above the count window's size "
                f"({window.get('size', 100)}) on edge {{edge}}: the breaker could never trip",
            )
        )
    open_for = breaker.get("open_for", 30.0)
    open_max = breaker.get("open_for_max")
    if isinstance(open_max, float) and open_max < open_for:
        findings.append(
            _Finding(
                "E0209",
                (("circuit_breaker", "open_for_max"), ("circuit_breaker", "open_for")),
                f"circuit_breaker.open_for_max ({format_seconds(open_max)}) is below open_for "
                f"({format_seconds(open_for)}) on edge {{edge}}",
            )
        )
    slow = breaker.get("slow_calls")
    if isinstance(slow, dict) and "over" not in slow:
        findings.append(
            _Finding(
                "E0211",
                (("circuit_breaker", "slow_calls"),),
                "circuit_breaker.slow_calls needs 'over' (a duration) on edge {edge}",
            )
        )
    return findings


def _most_specific(
    merged: MergedLayers, fields: tuple[SpecPath, ...], provenance: Provenance
) -> SpecPath | None:
    """Of conflicting fields, the full path of the one that made the conflict: set by the
    most specific layer, or else by an overlay or override rather than the base document
    (still tied: the first listed)."""
    best: SpecPath | None = None
    rank = (-1, -1)
    for field in fields:
        origin = merged.origin(field)
        if origin is None:
            continue
        candidate = (len(origin) - len(field), int(provenance.is_overlaid(origin)))
        if candidate > rank:
            best, rank = origin, candidate
    return best
