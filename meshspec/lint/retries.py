"""W0401: retries where repeating a call is unsafe."""

from __future__ import annotations

from meshspec.lint.edges import EdgeFacts
from meshspec.lint.findings import Finding

SAFE_TO_RETRY = frozenset({"connect-failure"})
"""Conditions under which the request never reached the upstream, so a retry cannot repeat
its effect."""


def idempotency_findings(edges: list[EdgeFacts]) -> list[Finding]:
    out: list[Finding] = []
    for edge in edges:
        if edge.idempotent is not False or edge.attempts < 2:
            continue
        unsafe = [c for c in edge.policy.retry.on if c not in SAFE_TO_RETRY]
        if not unsafe:
            continue
        out.append(
            Finding(
                "W0401",
                edge.caller,
                edge.upstream,
                f"the edge is marked idempotent: false, yet it retries up to "
                f"{edge.attempts - 1} time(s) on {', '.join(unsafe)}, after which the request "
                "may already have taken effect; retry only on connect-failure, or switch "
                "retry off",
                (("retry", "on"), ("retry", "attempts")),
            )
        )
    return out
