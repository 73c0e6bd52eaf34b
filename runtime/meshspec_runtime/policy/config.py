"""Resolved policy settings: what the compiler writes into a bundle and the runtime reads.

One definition, used by both sides: the bundle is the single truth at run time. Every value
here is resolved: durations are seconds (float), ratios are fractions in [0, 1], and a policy
that is switched off is ``None``. The spec language (in the ``meshspec`` distribution)
accepts friendlier forms (``250ms``, ``20%``) and lowers them to these models.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from meshspec_runtime.policy.limits import (
    MAX_ATTEMPTS,
    MAX_BUDGET_TOKENS,
    MAX_CHOICES,
    MAX_CONDITIONS,
    MAX_COUNT,
    MAX_COUNT_WINDOW,
    MAX_DURATION_SECONDS,
    MAX_HASH_ON_LENGTH,
    MAX_HEDGE_ATTEMPTS,
    MAX_MAGLEV_TABLE_SIZE,
    MAX_MULTIPLIER,
    MAX_RATE_PER_SECOND,
    MAX_RING_SIZE,
    MAX_TIME_WINDOW_SECONDS,
    MIN_MAGLEV_TABLE_SIZE,
    is_prime,
)

# Every number is bounded (meshspec_runtime.policy.limits): a bundle is data from elsewhere,
# and an unbounded value would fail later, as a hang or a MemoryError on the request path.
Seconds = Annotated[float, Field(ge=0, le=MAX_DURATION_SECONDS)]
PositiveSeconds = Annotated[float, Field(gt=0, le=MAX_DURATION_SECONDS)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Multiplier = Annotated[float, Field(ge=1, le=MAX_MULTIPLIER)]
Count = Annotated[int, Field(ge=1, le=MAX_COUNT)]


class PolicyModel(BaseModel):
    """Base of every policy model: immutable, unknown fields rejected, numbers finite."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Jitter(StrEnum):
    """Jitter kinds of the AWS "Exponential Backoff and Jitter" article."""

    FULL = "full"
    EQUAL = "equal"
    DECORRELATED = "decorrelated"
    NONE = "none"


class BackoffConfig(PolicyModel):
    base: PositiveSeconds = 0.025
    max: PositiveSeconds = 1.0
    jitter: Jitter = Jitter.FULL
    multiplier: Multiplier = 2.0

    @model_validator(mode="after")
    def _base_within_max(self) -> BackoffConfig:
        if self.base > self.max:
            raise ValueError(f"backoff base ({self.base}s) is above its max ({self.max}s)")
        return self


# Retry-on and failure conditions. A condition is one of the keywords below, a three-digit
# HTTP status ("503"), or a gRPC status name ("grpc:UNAVAILABLE").
CONDITION_KEYWORDS: frozenset[str] = frozenset(
    {"connect-failure", "timeout", "reset", "5xx", "gateway-error", "4xx"}
)
GRPC_STATUS_NAMES: frozenset[str] = frozenset(
    {
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    }
)
_STATUS_RE = re.compile(r"^[1-5][0-9][0-9]$")


def check_condition(text: str) -> str:
    """Return ``text`` normalised if it is a valid condition, else raise ValueError."""
    if text in CONDITION_KEYWORDS or _STATUS_RE.match(text):
        return text
    if text.lower().startswith("grpc:"):
        name = text[5:].upper().replace("-", "_")
        if name in GRPC_STATUS_NAMES:
            return f"grpc:{name}"
        raise ValueError(f"unknown gRPC status {text[5:]!r}")
    raise ValueError(
        f"unknown condition {text!r}: expected one of {', '.join(sorted(CONDITION_KEYWORDS))}, "
        "a three-digit HTTP status, or grpc:<STATUS>"
    )


Condition = Annotated[str, Field(min_length=1)]
Conditions = Annotated[tuple[Condition, ...], Field(max_length=MAX_CONDITIONS)]
DEFAULT_RETRY_ON: tuple[str, ...] = ("connect-failure", "timeout", "5xx")
DEFAULT_FAILURE_ON: tuple[str, ...] = ("connect-failure", "timeout", "reset", "5xx")


Tokens = Annotated[float, Field(ge=0, le=MAX_BUDGET_TOKENS)]


class BudgetScope(StrEnum):
    """How far a retry budget reaches."""

    PROCESS = "process"
    """Each caller process keeps its own budget."""
    SERVICE = "service"
    """One budget for every replica of the calling service, kept in a shared store (Redis):
    each process keeps a local view and exchanges its counts in the background."""


BudgetKind = Literal["window", "bucket"]
WINDOW_ONLY = ("min_per_second", "window")
BUCKET_ONLY = ("initial", "cap", "threshold")


class RetryBudgetConfig(PolicyModel):
    """A retry budget of one of two shapes; either reaches one process or the whole service.

    ``kind: window`` (Finagle's ``RetryBudget``, Linkerd's): retries up to ``ratio`` of the
    requests in the last ``window`` plus a floor of ``min_per_second``.

    ``kind: bucket`` (Brooker's retry token bucket, gRPC's ``retryThrottling``, the AWS SDKs'):
    a bucket that starts with ``initial`` tokens, gains ``ratio`` of a token per request up to
    ``cap``; a retry takes one token, and is refused when that would leave fewer than
    ``threshold``.
    """

    kind: BudgetKind = "window"
    ratio: Fraction = 0.2
    min_per_second: Annotated[float, Field(ge=0, le=MAX_RATE_PER_SECOND)] = 10.0
    window: PositiveSeconds = 10.0
    initial: Tokens | None = None
    """``bucket``: tokens at the start; ``None``: a full bucket (``cap``)."""
    cap: Annotated[float, Field(ge=1, le=MAX_BUDGET_TOKENS)] = 100.0
    threshold: Tokens = 0.0
    scope: BudgetScope = BudgetScope.PROCESS

    @model_validator(mode="after")
    def _one_shape(self) -> RetryBudgetConfig:
        # a bundle writes every field, so a field of the other shape is refused only when it
        # differs from its default (it would have no effect)
        foreign = BUCKET_ONLY if self.kind == "window" else WINDOW_ONLY
        fields = type(self).model_fields
        given = [name for name in foreign if getattr(self, name) != fields[name].default]
        if given:
            raise ValueError(
                f"{', '.join(given)} {'apply' if len(given) > 1 else 'applies'} to a retry "
                f"budget of kind {'bucket' if self.kind == 'window' else 'window'}, not "
                f"{self.kind}"
            )
        if self.kind == "bucket":
            if self.initial is not None and self.initial > self.cap:
                raise ValueError(
                    f"budget initial ({self.initial:g}) is above its cap ({self.cap:g})"
                )
            if self.threshold + 1 > self.cap:
                raise ValueError(
                    f"budget threshold ({self.threshold:g}) leaves no token of its cap "
                    f"({self.cap:g}) for a retry: expected at most cap - 1"
                )
        return self

    @property
    def fill(self) -> float:
        """``bucket``: the tokens it starts with."""
        return self.cap if self.initial is None else self.initial


class RetryStopConfig(PolicyModel):
    """Retries stop while the failure rate is above a threshold (Marc Brooker's "circuit
    breaker" that breaks only retries): first tries always go."""

    failure_rate: Fraction = 0.1
    """Share of recent requests whose first try failed (a ``retry.on`` outcome) above which
    no retry is made."""
    window: PositiveSeconds = 10.0
    minimum_requests: Count = 10
    """Requests in the window before the rate counts (retries go until then)."""


class RetryConfig(PolicyModel):
    attempts: Annotated[int, Field(ge=1, le=MAX_ATTEMPTS)] = 3
    """Total tries, the first included."""
    per_try_timeout: PositiveSeconds | None = None
    """``None``: each try may use what is left of the call's overall timeout."""
    backoff: BackoffConfig = BackoffConfig()
    on: Conditions = DEFAULT_RETRY_ON
    budget: RetryBudgetConfig | None = None
    stop_above: RetryStopConfig | None = None

    @field_validator("on")
    @classmethod
    def _conditions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(check_condition(c) for c in value)


PERCENTILE_PATTERN = r"^p[5-9][0-9](\.[0-9]{1,3})?$"
"""``p50`` to ``p99.999``: a latency percentile (``hedge.delay``)."""
Percentile = Annotated[str, Field(pattern=PERCENTILE_PATTERN)]


def percentile_quantile(text: str) -> float:
    """``"p95"`` -> ``0.95``."""
    return float(text[1:]) / 100


class HedgeConfig(PolicyModel):
    """Hedged requests (gRPC's ``hedgingPolicy``, Envoy's ``hedge_policy``, Finagle's backup
    requests): when an attempt has not answered after ``delay``, another one starts on
    another endpoint, up to ``max_attempts`` in all; the first usable answer wins and the
    others are cancelled. Each hedge withdraws from the retry budget, as a retry does."""

    delay: Seconds | Percentile
    """How long an attempt may be outstanding before the next hedge starts ("The Tail at
    Scale": about the 95th percentile of the edge's latency): seconds, or a percentile such as
    ``"p95"`` of the edge's recent attempt latencies (no hedge by time until 100 came)."""
    max_attempts: Annotated[int, Field(ge=2, le=MAX_HEDGE_ATTEMPTS)] = 2
    """Attempts started by hedging, the first included."""
    non_fatal: Conditions = DEFAULT_RETRY_ON
    """Outcomes that do not end the call: a hedge starts at once in its place, and the
    answers of the attempts still in flight are awaited. Any other outcome ends the call."""

    @field_validator("non_fatal")
    @classmethod
    def _conditions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(check_condition(c) for c in value)


class AdaptiveThrottleConfig(PolicyModel):
    """Client-side adaptive throttling (Google SRE book, "Handling Overload")."""

    k: Multiplier = 2.0
    window: PositiveSeconds = 120.0


class CountWindow(PolicyModel):
    kind: Literal["count"] = "count"
    size: Annotated[int, Field(ge=1, le=MAX_COUNT_WINDOW)] = 100


class TimeWindow(PolicyModel):
    kind: Literal["time"] = "time"
    size: Annotated[int, Field(ge=1, le=MAX_TIME_WINDOW_SECONDS)] = 60
    """Seconds, as resilience4j's time-based window (one bucket a second)."""


class SlowCallConfig(PolicyModel):
    over: PositiveSeconds
    rate: Fraction = 1.0


class CircuitBreakerConfig(PolicyModel):
    """resilience4j-style breaker, or pybreaker's consecutive-failures mode."""

    mode: Literal["rate", "consecutive"] = "rate"
    window: Annotated[CountWindow | TimeWindow, Field(discriminator="kind")] = CountWindow()
    minimum_calls: Count = 20
    failure_rate: Fraction = 0.5
    slow_calls: SlowCallConfig | None = None
    consecutive_failures: Count = 5
    open_for: PositiveSeconds = 30.0
    open_for_max: PositiveSeconds | None = None
    """When set, each trip in a row multiplies ``open_for`` by the multiplier, up to this cap."""
    open_for_multiplier: Multiplier = 2.0
    half_open_calls: Count = 5
    failure_on: Conditions = DEFAULT_FAILURE_ON

    @field_validator("failure_on")
    @classmethod
    def _conditions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(check_condition(c) for c in value)

    @model_validator(mode="after")
    def _consistent(self) -> CircuitBreakerConfig:
        if isinstance(self.window, CountWindow) and self.minimum_calls > self.window.size:
            raise ValueError(
                f"minimum_calls ({self.minimum_calls}) is above the count window's size "
                f"({self.window.size}): the breaker could never trip"
            )
        if self.open_for_max is not None and self.open_for_max < self.open_for:
            raise ValueError("open_for_max is below open_for")
        return self


class Strategy(StrEnum):
    ROUND_ROBIN = "round_robin"
    WEIGHTED_ROUND_ROBIN = "weighted_round_robin"
    RANDOM = "random"
    LEAST_REQUEST = "least_request"
    PEAK_EWMA = "peak_ewma"
    RING_HASH = "ring_hash"
    MAGLEV = "maglev"


class LoadBalancerConfig(PolicyModel):
    strategy: Strategy = Strategy.LEAST_REQUEST
    choices: Annotated[int, Field(ge=2, le=MAX_CHOICES)] = 2
    """Candidates sampled by least_request (power of two choices by default)."""
    panic_threshold: Fraction = 0.5
    """Below this share of available endpoints, balance over all of them (Envoy's panic mode)."""
    ewma_decay: PositiveSeconds = 10.0
    """peak_ewma's decay time."""
    hash_on: Annotated[str, Field(min_length=1, max_length=MAX_HASH_ON_LENGTH)] | None = None
    """ring_hash/maglev: the request attribute to hash (e.g. a header); ``None``: the call key."""
    ring_size: Annotated[int, Field(ge=1, le=MAX_RING_SIZE)] = 1024
    maglev_table_size: Annotated[int, Field(ge=MIN_MAGLEV_TABLE_SIZE, le=MAX_MAGLEV_TABLE_SIZE)] = (
        65537
    )
    """A prime (the Maglev paper: every host's preference list must visit every slot)."""

    @field_validator("maglev_table_size")
    @classmethod
    def _prime(cls, value: int) -> int:
        if not is_prime(value):
            raise ValueError(f"maglev_table_size must be a prime, got {value}")
        return value


class OutlierDetectionConfig(PolicyModel):
    consecutive_failures: Count = 5
    base_ejection: PositiveSeconds = 30.0
    """Ejection time; the n-th ejection of one endpoint lasts n x base, up to ``max_ejection``."""
    max_ejection: PositiveSeconds = 300.0
    max_ejected: Fraction = 0.1


class UpstreamPolicy(PolicyModel):
    """Everything a caller applies to one upstream, fully resolved."""

    timeout: PositiveSeconds = 2.0
    """The whole call: every attempt and every wait."""
    retry: RetryConfig = RetryConfig()
    adaptive_throttle: AdaptiveThrottleConfig | None = None
    circuit_breaker: CircuitBreakerConfig | None = None
    load_balancer: LoadBalancerConfig = LoadBalancerConfig()
    outlier_detection: OutlierDetectionConfig | None = None
    concurrency_limit: Count | None = None
    hedge: HedgeConfig | None = None

    @model_validator(mode="after")
    def _per_try_within_total(self) -> UpstreamPolicy:
        per_try = self.retry.per_try_timeout
        if per_try is not None and per_try > self.timeout:
            raise ValueError(
                f"retry.per_try_timeout ({per_try}s) is above the call's timeout ({self.timeout}s)"
            )
        return self
