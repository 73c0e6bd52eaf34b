"""W0301-W0303: circuit breakers that cannot trip, or trip on noise."""

from __future__ import annotations

import math

from meshspec_runtime.policy.config import CircuitBreakerConfig, TimeWindow

from meshspec.lint.edges import EdgeFacts
from meshspec.lint.findings import Finding
from meshspec.spec.units import format_seconds

FEWEST_FAILURES = 3
"""A breaker that opens on fewer failures than this opens on an ordinary blip."""


def breaker_findings(edges: list[EdgeFacts]) -> list[Finding]:
    out: list[Finding] = []
    for edge in edges:
        breaker = edge.policy.circuit_breaker
        if breaker is None:
            continue
        out.extend(_cannot_fill(edge, breaker))
        out.extend(_window_shorter_than_open(edge, breaker))
        out.extend(_trips_on_noise(edge, breaker))
    return out


def _cannot_fill(edge: EdgeFacts, breaker: CircuitBreakerConfig) -> list[Finding]:
    """W0301: each caller instance has its own breaker, seeing its share of the edge's
    traffic; a time window that cannot hold ``minimum_calls`` of it never trips."""
    window = breaker.window
    if breaker.mode != "rate" or not isinstance(window, TimeWindow) or not edge.traffic:
        return []
    per_instance = edge.traffic / edge.caller_instances
    calls = per_instance * window.size
    if calls >= breaker.minimum_calls:
        return []
    return [
        Finding(
            "W0301",
            edge.caller,
            edge.upstream,
            f"circuit_breaker.minimum_calls ({breaker.minimum_calls}) is above the "
            f"{calls:.3g} calls each of {edge.caller}'s {edge.caller_instances} instance(s) "
            f"makes in the {format_seconds(window.size)} window at the declared "
            f"{edge.traffic:g}/s: the breaker can never trip",
            (("circuit_breaker", "minimum_calls"), ("circuit_breaker", "window")),
        )
    ]


def _window_shorter_than_open(edge: EdgeFacts, breaker: CircuitBreakerConfig) -> list[Finding]:
    """W0302: a breaker that judges a short window of calls but then stays open longer
    turns a brief blip into a long outage of the edge."""
    window = breaker.window
    if breaker.mode != "rate" or not isinstance(window, TimeWindow):
        return []
    if window.size >= breaker.open_for:
        return []
    return [
        Finding(
            "W0302",
            edge.caller,
            edge.upstream,
            f"circuit_breaker.window ({format_seconds(window.size)}) is shorter than open_for "
            f"({format_seconds(breaker.open_for)}): a blip of {format_seconds(window.size)} "
            f"cuts the edge off for {format_seconds(breaker.open_for)}",
            (("circuit_breaker", "window"), ("circuit_breaker", "open_for")),
        )
    ]


def _trips_on_noise(edge: EdgeFacts, breaker: CircuitBreakerConfig) -> list[Finding]:
    """W0303: opening on one or two failed calls cuts the edge off on ordinary noise."""
    if breaker.mode == "consecutive":
        needed = breaker.consecutive_failures
        fields: tuple[tuple[str, ...], ...] = (("circuit_breaker", "consecutive_failures"),)
        how = f"consecutive_failures is {needed}"
    else:
        needed = max(1, math.ceil(breaker.minimum_calls * breaker.failure_rate))
        fields = (("circuit_breaker", "minimum_calls"), ("circuit_breaker", "failure_rate"))
        how = (
            f"minimum_calls {breaker.minimum_calls} x failure_rate {breaker.failure_rate * 100:g}%"
        )
    if needed >= FEWEST_FAILURES:
        return []
    failures = "one failed call" if needed == 1 else f"{needed} failed calls"
    return [
        Finding(
            "W0303",
            edge.caller,
            edge.upstream,
            f"the breaker opens on {failures} ({how}); expected at least "
            f"{FEWEST_FAILURES} so that ordinary noise does not cut the edge off",
            fields,
        )
    ]
