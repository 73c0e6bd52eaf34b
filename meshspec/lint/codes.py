"""The lint codes: one place that names each warning (docs/lint.md explains each one)."""

from __future__ import annotations

CODES: dict[str, str] = {
    "W0001": "a suppression that silences nothing",
    "W0101": "retry amplification above the threshold",
    "W0201": "a timeout shorter than what the upstream needs for its own retries",
    "W0202": "attempts times the per-try timeout, plus backoff, exceed the overall timeout",
    "W0203": "a per-try timeout below the upstream's typical latency",
    "W0301": "a breaker whose minimum_calls the edge's traffic cannot fill in its window",
    "W0302": "a breaker window shorter than the time it stays open",
    "W0303": "a breaker that opens on one or two failures",
    "W0401": "retries on a non-idempotent edge",
    "W0402": "hedging and retries together beyond what the retry budget bounds",
}
"""Code -> what it flags, in a few words."""

DEFAULT_MAX_AMPLIFICATION = 10.0
"""W0101's threshold unless the spec's ``lint.max_amplification`` or the command line says."""
