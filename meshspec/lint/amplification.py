"""W0101: how many requests can reach each service for one request entering the mesh when
its upstreams fail.

Each caller tries a failing upstream ``attempts`` times (fewer where a retry budget bounds it,
see :meth:`EdgeFacts.multiplier`), and a failed call fails the caller's own request, which
its caller retries in turn: along a path the multipliers multiply (4 attempts at each of 3
layers is 64x at the bottom). A service's amplification is that product along the worst path
from any entry (a service nothing in the mesh calls) down to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from meshspec.lint.edges import EdgeFacts
from meshspec.lint.findings import Finding


@dataclass(frozen=True, slots=True)
class Amplification:
    """The worst case at one service."""

    service: str
    factor: float
    path: tuple[str, ...]
    """Entry first, the service last."""
    multipliers: tuple[float, ...]
    """One per edge of the path."""
    capped: bool
    """A retry budget on the path bounds the factor (it is then an upper bound only)."""

    def as_dict(self) -> dict[str, object]:
        return {
            "factor": round(self.factor, 6),
            "path": list(self.path),
            "multipliers": [round(m, 6) for m in self.multipliers],
            "budget_capped": self.capped,
        }


def amplification(services: Iterable[str], edges: list[EdgeFacts]) -> dict[str, Amplification]:
    """The worst-case amplification of every service (1 for an entry)."""
    names = list(services)
    callers: dict[str, list[EdgeFacts]] = {name: [] for name in names}
    for edge in edges:
        callers[edge.upstream].append(edge)
    worst: dict[str, Amplification] = {}

    def visit(service: str) -> Amplification:
        # the call graph is acyclic (validate refuses cycles); depth is bounded by its size
        known = worst.get(service)
        if known is not None:
            return known
        best = Amplification(service, 1.0, (service,), (), False)
        for edge in callers[service]:
            above = visit(edge.caller)
            factor, capped = edge.multiplier()
            candidate = Amplification(
                service,
                above.factor * factor,
                (*above.path, service),
                (*above.multipliers, factor),
                above.capped or capped,
            )
            if candidate.factor > best.factor:
                best = candidate
        worst[service] = best
        return best

    for name in _topological(names, callers):
        visit(name)
    return {name: worst[name] for name in names}


def _topological(names: list[str], callers: dict[str, list[EdgeFacts]]) -> list[str]:
    """Callers before upstreams, so ``visit`` never recurses deeper than one level."""
    incoming = {name: len({e.caller for e in callers[name]}) for name in names}
    upstreams: dict[str, set[str]] = {name: set() for name in names}
    for name in names:
        for edge in callers[name]:
            upstreams[edge.caller].add(name)
    ready = [name for name in names if incoming[name] == 0]
    order: list[str] = []
    while ready:
        name = ready.pop()
        order.append(name)
        for upstream in sorted(upstreams[name]):
            incoming[upstream] -= 1
            if incoming[upstream] == 0:
                ready.append(upstream)
    return order


def amplification_findings(
    worst: dict[str, Amplification], edges: list[EdgeFacts], threshold: float
) -> list[Finding]:
    """One W0101 per edge whose worst path into its upstream exceeds ``threshold``."""
    out: list[Finding] = []
    for edge in edges:
        above = worst[edge.caller]
        factor, capped = edge.multiplier()
        total = above.factor * factor
        if total <= threshold:
            continue
        path = (*above.path, edge.upstream)
        multipliers = (*above.multipliers, factor)
        product = " x ".join(_number(m) for m in multipliers)
        bound = " (bounded by retry budgets)" if above.capped or capped else ""
        out.append(
            Finding(
                "W0101",
                edge.caller,
                edge.upstream,
                f"when it fails, {edge.upstream} can receive {_number(total)}x the requests "
                f"entering the mesh{bound}, above the threshold of "
                f"{_number(threshold)}x, via {' -> '.join(path)} ({product} attempts)",
                (("retry", "attempts"),)
                if edge.attempts > 1
                else (("hedge",),)
                if edge.hedges
                else (),
            )
        )
    return out


def _number(value: float) -> str:
    return f"{value:.3g}" if value != int(value) else str(int(value))
