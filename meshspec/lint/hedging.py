"""W0402: hedging and retries together beyond what the retry budget bounds.

A hedged call may start ``hedge.max_attempts`` attempts and then ``retry.attempts - 1``
retries (meshspec_runtime.policy.hedge); hedges and retries withdraw from the same retry
budget. gRPC forbids hedging and retries on one method for this reason; meshspec allows them
together, but only a budget keeps their sum in check, and a budget that hedging alone drains
leaves no retries.
"""

from __future__ import annotations

from meshspec.lint.edges import EdgeFacts
from meshspec.lint.findings import Finding
from meshspec.spec.units import format_seconds

MOST_REQUESTS = 0.5
"""A hedge delay at or below the upstream's typical (median) latency hedges about this share
of the requests, or more."""


def hedging_findings(edges: list[EdgeFacts]) -> list[Finding]:
    out: list[Finding] = []
    for edge in edges:
        hedge = edge.policy.hedge
        if hedge is None:
            continue
        budget = edge.policy.retry.budget
        retries = edge.attempts - 1
        if budget is None:
            if retries > 0:
                out.append(
                    Finding(
                        "W0402",
                        edge.caller,
                        edge.upstream,
                        f"the edge hedges (up to {hedge.max_attempts} attempts) and retries (up "
                        f"to {retries} more), {edge.worst_attempts} attempts per call when "
                        "the upstream fails, and no retry budget bounds them; add "
                        "retry.budget (hedges and retries draw from it) or switch retry off",
                        (("hedge",), ("retry", "attempts")),
                    )
                )
            continue
        latency = edge.upstream_latency
        delay = hedge.delay
        if isinstance(delay, str):  # a percentile of the edge's own latencies (p95)
            continue
        if latency is not None and delay <= latency and budget.ratio < MOST_REQUESTS:
            out.append(
                Finding(
                    "W0402",
                    edge.caller,
                    edge.upstream,
                    f"hedge.delay ({format_seconds(delay)}) is not above "
                    f"{edge.upstream}'s typical latency ({format_seconds(latency)}, "
                    f"services.{edge.upstream}.lint.latency): about half the requests or more "
                    f"hedge, beyond the retry budget's {budget.ratio:.0%}, which refuses hedges "
                    "and leaves nothing for retries; hedge after the upstream's p95 latency",
                    (("hedge", "delay"), ("retry", "budget", "ratio")),
                )
            )
    return out
