"""``prometheus/rules.yml``: alert rules per caller -> upstream edge, from templates/rules.yml.j2.

The metric names are those docs/metrics.md documents (the runtime exports them). Each edge gets
an error-ratio alert against its objective; a breaker-open alert when the edge has a circuit
breaker; a budget-exhausted alert when its retries have a budget. Expressions and label values
are built and quoted here (PromQL string literals inside YAML double-quoted scalars), so the
template only lays them out, and a mesh of thousands of edges renders in well under a second.
Each service name is quoted once, however many edges name it.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshspec.compile.ir import Edge, ResolvedMesh
from meshspec.compile.templating import promql_string, render, yaml_string

PATH = "prometheus/rules.yml"
WINDOW = "5m"
REQUESTS = "meshspec_upstream_requests_total"
BREAKER_STATE = "meshspec_circuit_breaker_state"
BUDGET_EXHAUSTED = "meshspec_retry_budget_exhausted_total"


@dataclass(frozen=True, slots=True)
class Alert:
    name: str
    expr: str
    """A YAML scalar, quoted."""
    wait: str
    severity: str
    summary: str
    """A YAML scalar, quoted."""


@dataclass(frozen=True, slots=True)
class EdgeAlerts:
    caller: str
    """A YAML scalar, quoted (as are the others)."""
    upstream: str
    alerts: tuple[Alert, ...]


@dataclass(frozen=True, slots=True)
class CallerGroup:
    name: str
    edges: tuple[EdgeAlerts, ...]


def emit(mesh: ResolvedMesh) -> dict[str, bytes]:
    quoted = {service.name: yaml_string(service.name) for service in mesh.services}
    groups = [
        CallerGroup(
            name=yaml_string(f"meshspec:{mesh.name}:{service.name}"),
            edges=tuple(edge_alerts(service.name, edge, quoted) for edge in service.edges),
        )
        for service in mesh.services
        if service.edges
    ]
    return {PATH: render("rules.yml.j2", mesh=yaml_string(mesh.name), groups=groups)}


def edge_alerts(caller: str, edge: Edge, quoted: dict[str, str] | None = None) -> EdgeAlerts:
    """The alerts of one edge; ``quoted`` holds names already quoted as YAML scalars."""
    selector = f"caller={promql_string(caller)},upstream={promql_string(edge.upstream)}"
    title = f"{caller} -> {edge.upstream}"
    max_errors = f"{1.0 - edge.objective:.6g}"
    alerts = [
        Alert(
            "MeshspecUpstreamErrorRatioHigh",
            yaml_string(
                f'sum(rate({REQUESTS}{{{selector},outcome!="success"}}[{WINDOW}])) / '
                f"sum(rate({REQUESTS}{{{selector}}}[{WINDOW}])) > {max_errors}"
            ),
            "5m",
            "page",
            yaml_string(f"{title}: error ratio above {max_errors} for 5m"),
        )
    ]
    if edge.policy.circuit_breaker is not None:
        alerts.append(
            Alert(
                "MeshspecCircuitBreakerOpen",
                yaml_string(f'max({BREAKER_STATE}{{{selector},state="open"}}) > 0'),
                "1m",
                "warning",
                yaml_string(f"{title}: circuit breaker open for 1m"),
            )
        )
    if edge.policy.retry.budget is not None:
        alerts.append(
            Alert(
                "MeshspecRetryBudgetExhausted",
                yaml_string(f"sum(rate({BUDGET_EXHAUSTED}{{{selector}}}[{WINDOW}])) > 0"),
                "5m",
                "warning",
                yaml_string(f"{title}: retry budget exhausted, retries are being dropped"),
            )
        )
    names = quoted or {}
    return EdgeAlerts(
        names.get(caller) or yaml_string(caller),
        names.get(edge.upstream) or yaml_string(edge.upstream),
        tuple(alerts),
    )
