"""``prometheus/rules.yml``: alert rules per caller -> upstream edge, from templates/rules.yml.j2.

The metric names are those docs/metrics.md documents (the runtime exports them). Each edge gets
an error-ratio alert against its objective; a breaker-open alert when the edge has a circuit
breaker; a budget-exhausted alert when its retries have a budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshspec.compile.ir import ResolvedMesh
from meshspec.compile.templating import promql_string, render

PATH = "prometheus/rules.yml"
RATE_WINDOW = "5m"


@dataclass(frozen=True, slots=True)
class EdgeAlerts:
    caller: str
    upstream: str
    selector: str
    """PromQL label matchers, already quoted: ``caller="a",upstream="b"``."""
    max_error_ratio: str
    breaker: bool
    budget: bool


@dataclass(frozen=True, slots=True)
class CallerGroup:
    name: str
    edges: tuple[EdgeAlerts, ...]


def emit(mesh: ResolvedMesh) -> dict[str, bytes]:
    groups = [
        CallerGroup(
            name=f"meshspec:{mesh.name}:{service.name}",
            edges=tuple(
                EdgeAlerts(
                    caller=service.name,
                    upstream=edge.upstream,
                    selector=(
                        f"caller={promql_string(service.name)},"
                        f"upstream={promql_string(edge.upstream)}"
                    ),
                    max_error_ratio=f"{1.0 - edge.objective:.6g}",
                    breaker=edge.policy.circuit_breaker is not None,
                    budget=edge.policy.retry.budget is not None,
                )
                for edge in service.edges
            ),
        )
        for service in mesh.services
        if service.edges
    ]
    return {PATH: render("rules.yml.j2", mesh=mesh.name, groups=groups, window=RATE_WINDOW)}
