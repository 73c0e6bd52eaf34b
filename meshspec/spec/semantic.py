"""Checks beyond types, run on a spec that passed the models: names that must exist, the
call graph, duplicates, and rules that hold only after merging the policy layers.

Every check returns located diagnostics through the document's provenance, so a value that
an environment overlay or an inherited default set is reported where it was written.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from pydantic import ValidationError

from meshspec.spec.diagnostics import Diagnostic
from meshspec.spec.document import Provenance
from meshspec.spec.models import OFF, MeshSpec
from meshspec.spec.resolve import (
    HEALTH_CHECK_KINDS,
    MergedLayers,
    SpecPath,
    lower_edge,
    lower_health_check,
    merged_edge,
    merged_health_check,
)
from meshspec.spec.units import format_seconds

MIN_DEREGISTER_AFTER = 60.0


def check(spec: MeshSpec, provenance: Provenance) -> list[Diagnostic]:
    """Every semantic problem of ``spec``."""
    out: list[Diagnostic] = []
    out.extend(_upstream_names(spec, provenance))
    out.extend(_cycles(spec, provenance))
    out.extend(_instances(spec, provenance))
    out.extend(_health_checks(spec, provenance))
    out.extend(_edges(spec, provenance))
    return out


def _upstream_names(spec: MeshSpec, provenance: Provenance) -> Iterator[Diagnostic]:
    names = list(spec.services)
    for caller, service in spec.services.items():
        for upstream in service.upstreams:
            path = ("services", caller, "upstreams", upstream)
            if upstream == caller:
                yield provenance.diagnostic(
                    path, "E0201", f"service {caller!r} names itself as an upstream", key=True
                )
            elif upstream not in spec.services:
                close = difflib.get_close_matches(upstream, names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                yield provenance.diagnostic(
                    path,
                    "E0200",
                    f"upstream {upstream!r} is not a declared service{hint}",
                    key=True,
                )


def _cycles(spec: MeshSpec, provenance: Provenance) -> Iterator[Diagnostic]:
    """Report each call-graph cycle once, at the edge that closes it (iterative DFS)."""
    graph = {
        name: [u for u in service.upstreams if u in spec.services and u != name]
        for name, service in spec.services.items()
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
                yield provenance.diagnostic(
                    ("services", node, "upstreams", child),
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
        ids: dict[str, int] = {}
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
            if instance.id is not None:
                first_id = ids.setdefault(instance.id, index)
                if first_id != index:
                    yield provenance.diagnostic(
                        (*where, "id"),
                        "E0210",
                        f"instance id {instance.id!r} is used twice (first by "
                        f"instances[{first_id}])",
                    )


def _located(
    provenance: Provenance, merged: MergedLayers, field: SpecPath, fallback: SpecPath
) -> SpecPath:
    origin = merged.origin(field)
    return origin if origin is not None else fallback


def _health_checks(spec: MeshSpec, provenance: Provenance) -> Iterator[Diagnostic]:
    for name in spec.services:
        merged = merged_health_check(spec, name)
        values = merged.values
        if not values or OFF in values:
            continue
        fallback: SpecPath = ("services", name)
        if not any(kind in values for kind in HEALTH_CHECK_KINDS):
            where = merged.origin(next(iter(merged.origins))) if merged.origins else None
            yield provenance.diagnostic(
                (where or fallback)[:-1] if where else fallback,
                "E0116",
                f"health check of {name!r} has no kind; expected one of http, tcp, grpc, ttl",
            )
            continue
        resolved = lower_health_check(values)
        if resolved is None:
            continue
        if resolved.kind != "ttl" and resolved.timeout >= resolved.interval:
            field = ("timeout",) if "timeout" in values else ("interval",)
            yield provenance.diagnostic(
                _located(provenance, merged, field, fallback),
                "E0204",
                f"health check timeout ({format_seconds(resolved.timeout)}) is not below its "
                f"interval ({format_seconds(resolved.interval)}) for service {name!r}",
            )
        after = resolved.deregister_after
        if after is not None and after < MIN_DEREGISTER_AFTER:
            yield provenance.diagnostic(
                _located(provenance, merged, ("deregister_after",), fallback),
                "E0205",
                f"deregister_after is {format_seconds(after)}; expected at least 1m "
                "(Consul's minimum)",
            )


def _edges(spec: MeshSpec, provenance: Provenance) -> Iterator[Diagnostic]:
    for caller, service in spec.services.items():
        for upstream in service.upstreams:
            if upstream not in spec.services or upstream == caller:
                continue
            yield from _edge(spec, provenance, caller, upstream)


def _edge(
    spec: MeshSpec, provenance: Provenance, caller: str, upstream: str
) -> Iterator[Diagnostic]:
    merged = merged_edge(spec, caller, upstream)
    values = merged.values
    edge_path: SpecPath = ("services", caller, "upstreams", upstream)
    label = f"edge {caller} -> {upstream}"
    found = False
    retry = values.get("retry")
    timeout = values.get("timeout", 2.0)
    if isinstance(retry, dict):
        per_try = retry.get("per_try_timeout")
        if isinstance(per_try, float) and per_try > timeout:
            found = True
            later = _more_specific(merged, ("retry", "per_try_timeout"), ("timeout",))
            yield provenance.diagnostic(
                _located(provenance, merged, later, edge_path),
                "E0207",
                f"retry.per_try_timeout ({format_seconds(per_try)}) is above the call's "
                f"timeout ({format_seconds(timeout)}) on {label}; expected at most the timeout",
            )
        backoff = retry.get("backoff")
        if isinstance(backoff, dict) and backoff.get("base", 0.025) > backoff.get("max", 1.0):
            found = True
            later = _more_specific(
                merged, ("retry", "backoff", "base"), ("retry", "backoff", "max")
            )
            yield provenance.diagnostic(
                _located(provenance, merged, later, edge_path),
                "E0208",
                f"retry.backoff.base ({format_seconds(backoff.get('base', 0.025))}) is above "
                f"its max ({format_seconds(backoff.get('max', 1.0))}) on {label}",
            )
    breaker = values.get("circuit_breaker")
    if isinstance(breaker, dict):
        window = breaker.get("window", {"kind": "count", "size": 100})
        minimum = breaker.get("minimum_calls", 20)
        if window.get("kind") == "count" and minimum > window.get("size", 100):
            found = True
            later = _more_specific(
                merged, ("circuit_breaker", "minimum_calls"), ("circuit_breaker", "window")
            )
            yield provenance.diagnostic(
                _located(provenance, merged, later, edge_path),
                "E0206",
                f"circuit_breaker.minimum_calls ({minimum}) is above the count window's size "
                f"({window.get('size', 100)}) on {label}: the breaker could never trip",
            )
        open_for = breaker.get("open_for", 30.0)
        open_max = breaker.get("open_for_max")
        if isinstance(open_max, float) and open_max < open_for:
            found = True
            yield provenance.diagnostic(
                _located(provenance, merged, ("circuit_breaker", "open_for_max"), edge_path),
                "E0209",
                f"circuit_breaker.open_for_max ({format_seconds(open_max)}) is below open_for "
                f"({format_seconds(open_for)}) on {label}",
            )
        if isinstance(breaker.get("slow_calls"), dict) and "over" not in breaker["slow_calls"]:
            found = True
            yield provenance.diagnostic(
                _located(provenance, merged, ("circuit_breaker", "slow_calls"), edge_path),
                "E0211",
                f"circuit_breaker.slow_calls needs 'over' (a duration) on {label}",
            )
    if found:
        return
    try:
        from meshspec_runtime.policy.config import UpstreamPolicy

        UpstreamPolicy.model_validate(lower_edge(values))
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        yield provenance.diagnostic(
            edge_path,
            "E0212",
            f"the resolved policy of {label} is rejected by the runtime: "
            f"{first['msg'].removeprefix('Value error, ')}",
            key=True,
        )


def _more_specific(merged: MergedLayers, first: SpecPath, second: SpecPath) -> SpecPath:
    """Of two fields in conflict, the one set by the more specific layer (ties: the first)."""
    a = merged.origin(first)
    b = merged.origin(second)
    if a is None:
        return second
    if b is None:
        return first
    return second if len(b) - len(second) > len(a) - len(first) else first
