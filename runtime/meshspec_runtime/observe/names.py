"""Every metric the runtime exports and the compiled alert rules query, defined once.

The Prometheus collector builds its families from this table, the compiler's rule emitter
takes the names from it, the simulator exports its series under the same names, and a test
holds docs/metrics.md to it. Counter names carry their ``_total`` suffix as they appear in a
scrape and in PromQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

MetricType = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    """The series name as scraped (counters end in ``_total``; a histogram's base name)."""
    type: MetricType
    labels: tuple[str, ...]
    help: str

    @property
    def family(self) -> str:
        """The name prometheus-client's metric families take (without ``_total``)."""
        return self.name.removesuffix("_total") if self.type == "counter" else self.name


EDGE: Final = ("caller", "upstream")

REQUESTS: Final = Metric(
    "meshspec_upstream_requests_total",
    "counter",
    (*EDGE, "outcome"),
    "Logical calls (one per request, retries included), by final outcome.",
)
ATTEMPTS: Final = Metric(
    "meshspec_upstream_attempts_total",
    "counter",
    (*EDGE, "outcome"),
    "Attempts (tries) sent to an endpoint, by outcome.",
)
RETRIES: Final = Metric(
    "meshspec_upstream_retries_total",
    "counter",
    EDGE,
    "Retries made (attempts after the first).",
)
RETRIES_REFUSED: Final = Metric(
    "meshspec_upstream_retries_refused_total",
    "counter",
    (*EDGE, "reason"),
    "Retries a retryable outcome asked for but the policies refused, by reason: "
    "budget, attempts, deadline, stopped (retry.stop_above).",
)
BUDGET_EXHAUSTED: Final = Metric(
    "meshspec_retry_budget_exhausted_total",
    "counter",
    EDGE,
    "Retries the retry budget refused.",
)
BUDGET_SHARED: Final = Metric(
    "meshspec_retry_budget_shared",
    "gauge",
    EDGE,
    "Retry budgets of scope service: 1 while the budget is shared through the store, 0 while "
    "it decides alone (before the store first answers, or after falling back).",
)
BUDGET_FALLBACKS: Final = Metric(
    "meshspec_retry_budget_fallbacks_total",
    "counter",
    EDGE,
    "Times a retry budget of scope service fell back to its local share (store unreachable).",
)
HEDGES: Final = Metric(
    "meshspec_upstream_hedges_total",
    "counter",
    (*EDGE, "event"),
    "Hedged attempts (edges with a hedge policy), by event: started (a hedge began), won (its "
    "answer ended the call), cancelled (an attempt still in flight when another ended the call), "
    "refused (the retry budget refused a hedge).",
)
DURATION: Final = Metric(
    "meshspec_upstream_request_duration_seconds",
    "histogram",
    EDGE,
    "Duration of a logical call, waits and retries included.",
)
BREAKER_STATE: Final = Metric(
    "meshspec_circuit_breaker_state",
    "gauge",
    (*EDGE, "state"),
    "1 for the circuit breaker's current state, 0 for the others.",
)
BREAKER_TRANSITIONS: Final = Metric(
    "meshspec_circuit_breaker_transitions_total",
    "counter",
    (*EDGE, "to"),
    "Circuit breaker transitions, by the state entered.",
)
BREAKER_REJECTIONS: Final = Metric(
    "meshspec_circuit_breaker_rejections_total",
    "counter",
    EDGE,
    "Attempts refused because the breaker was open (or half-open and full).",
)
THROTTLE_REJECTIONS: Final = Metric(
    "meshspec_adaptive_throttle_rejections_total",
    "counter",
    EDGE,
    "Attempts the adaptive throttle dropped locally.",
)
CONCURRENCY_REJECTIONS: Final = Metric(
    "meshspec_concurrency_limit_rejections_total",
    "counter",
    EDGE,
    "Calls refused because the concurrency limit was reached.",
)
EJECTED: Final = Metric(
    "meshspec_outlier_ejected_endpoints",
    "gauge",
    EDGE,
    "Endpoints currently ejected by outlier detection.",
)
EJECTIONS: Final = Metric(
    "meshspec_outlier_ejections_total",
    "counter",
    EDGE,
    "Ejections made by outlier detection.",
)
ENDPOINTS: Final = Metric(
    "meshspec_upstream_endpoints",
    "gauge",
    EDGE,
    "Endpoints known for the upstream (from the bundle or discovery).",
)
BUNDLE_INFO: Final = Metric(
    "meshspec_bundle_info",
    "gauge",
    ("caller", "mesh", "version"),
    "Always 1: which bundle version the service runs.",
)
DISCOVERY_STALENESS: Final = Metric(
    "meshspec_discovery_staleness_seconds",
    "gauge",
    EDGE,
    "Seconds since discovery last answered for the upstream (0 while it answers).",
)
DISCOVERY_FAILURES: Final = Metric(
    "meshspec_discovery_failures_total",
    "counter",
    EDGE,
    "Discovery reads that failed (the last known endpoints stayed in force).",
)
RELOADS: Final = Metric(
    "meshspec_bundle_reloads_total",
    "counter",
    ("caller", "result"),
    "Bundle reloads, by result: applied, refused.",
)

METRICS: Final = (
    REQUESTS,
    ATTEMPTS,
    RETRIES,
    RETRIES_REFUSED,
    BUDGET_EXHAUSTED,
    BUDGET_SHARED,
    BUDGET_FALLBACKS,
    HEDGES,
    DURATION,
    BREAKER_STATE,
    BREAKER_TRANSITIONS,
    BREAKER_REJECTIONS,
    THROTTLE_REJECTIONS,
    CONCURRENCY_REJECTIONS,
    EJECTED,
    EJECTIONS,
    ENDPOINTS,
    BUNDLE_INFO,
    DISCOVERY_STALENESS,
    DISCOVERY_FAILURES,
    RELOADS,
)

OUTCOMES: Final = ("success", "error", "timeout", "connect_failure", "rejected")
"""Values of the ``outcome`` label. ``success``: an answer the edge's failure conditions do
not match; ``error``: an answer they match (5xx, a gRPC error) or a reset or other error;
``timeout``; ``connect_failure``; ``rejected``: refused locally (breaker open, throttle,
concurrency limit, no endpoint, deadline passed before an attempt)."""

RELOAD_RESULTS: Final = ("applied", "refused")
"""Values of ``RELOADS``' ``result`` label."""

REFUSAL_REASONS: Final = ("budget", "attempts", "deadline", "stopped")
"""Values of ``RETRIES_REFUSED``'s ``reason`` label."""

HEDGE_EVENTS: Final = ("started", "won", "cancelled", "refused")
"""Values of ``HEDGES``' ``event`` label."""

DURATION_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Upper bounds (seconds) of the duration histogram's buckets; ``+Inf`` is implied."""
