"""The mesh spec (apiVersion ``meshspec/v1``) as pydantic v2 models.

Policy models mirror the runtime's resolved models (``meshspec_runtime.policy.config``) with
every field optional, so that mesh defaults, a service's defaults and an edge's override can
be merged field by field (see :mod:`meshspec.spec.resolve`). Values carry units (see
:mod:`meshspec.spec.units`) and are stored parsed: seconds, fractions, events per second.

A policy is switched off, whatever it inherits, with the string ``off``; a field that is
absent inherits (an explicit ``null`` is refused by the semantic pass, E0115). The whole
document is validated by one ``model_validate`` call; checks that need more than one field,
or hold only after merging, live in :mod:`meshspec.spec.semantic`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal, TypeVar

from meshspec_runtime.policy.config import (
    CONDITION_KEYWORDS,
    GRPC_STATUS_NAMES,
    PERCENTILE_PATTERN,
    check_condition,
)
from meshspec_runtime.policy.limits import (
    MAX_ATTEMPTS,
    MAX_BUDGET_TOKENS,
    MAX_CHOICES,
    MAX_CONDITIONS,
    MAX_COUNT,
    MAX_COUNT_WINDOW,
    MAX_HASH_ON_LENGTH,
    MAX_HEDGE_ATTEMPTS,
    MAX_MAGLEV_TABLE_SIZE,
    MAX_MULTIPLIER,
    MAX_RING_SIZE,
    MAX_TIME_WINDOW_SECONDS,
    MIN_MAGLEV_TABLE_SIZE,
    is_prime,
)
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    StringConstraints,
    Tag,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from meshspec.spec.document import found as found_value
from meshspec.spec.document import register_pattern
from meshspec.spec.units import (
    DURATION_PATTERN,
    Duration,
    Rate,
    Ratio,
    WholeSeconds,
    parse_duration,
)

API_VERSION = "meshspec/v1"
OFF = "off"
Off = Literal["off"]

# Names and free text. Service, mesh, datacenter and environment names are DNS labels; tags,
# meta and ids keep to a charset that cannot break a DNS name, a zone file, a shell line or a
# JSON/YAML document.
DNS_LABEL_PATTERN = r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
DNS_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$"
SAFE_TEXT_PATTERN = r"^[A-Za-z0-9._:/=+@-]+$"
SAFE_TEXT_OR_EMPTY_PATTERN = r"^[A-Za-z0-9._:/=+@-]*$"
META_KEY_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,127}$"
INSTANCE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
HTTP_PATH_PATTERN = r"^/[A-Za-z0-9._~/=%+:@-]*$"
GRPC_SERVICE_PATTERN = r"^([A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*)?$"

DnsLabel = Annotated[str, StringConstraints(pattern=DNS_LABEL_PATTERN)]
DnsName = Annotated[str, StringConstraints(pattern=DNS_NAME_PATTERN, max_length=253)]
SafeText = Annotated[str, StringConstraints(pattern=SAFE_TEXT_PATTERN, max_length=255)]
MetaValue = Annotated[str, StringConstraints(pattern=SAFE_TEXT_OR_EMPTY_PATTERN, max_length=512)]
MetaKey = Annotated[str, StringConstraints(pattern=META_KEY_PATTERN)]
InstanceId = Annotated[str, StringConstraints(pattern=INSTANCE_ID_PATTERN)]
Port = Annotated[int, Field(ge=1, le=65535)]
# Bounds are the runtime's (meshspec_runtime.policy.limits), so that a spec that validates
# lowers to policies the runtime accepts and can hold.
MAX_INT = MAX_COUNT
PositiveInt = Annotated[int, Field(ge=1, le=MAX_COUNT)]
Multiplier = Annotated[float, Field(ge=1, le=MAX_MULTIPLIER)]
Weight = Annotated[int, Field(ge=1, le=65535)]
"""An instance's weight is an SRV record's 16-bit weight field in the zone."""
MAX_META_PAIRS = 62
"""Consul takes at most 64 meta pairs per service, and the bundle adds two of its own."""
RESERVED_META_PREFIXES = ("consul-", "meshspec_")
"""Consul refuses ``consul-`` keys; the bundle writes ``meshspec_`` keys itself (its version and
mesh) and would overwrite a spec's."""
MAX_DNS_TTL = 2**31 - 1
"""RFC 2181 section 8: a TTL is at most 2^31 - 1 seconds."""
# The runtime's enums, spelled as literals so strict validation takes plain strings (a test
# checks they stay in step with meshspec_runtime.policy.config.Jitter and Strategy).
JitterName = Literal["full", "equal", "decorrelated", "none"]
StrategyName = Literal[
    "round_robin",
    "weighted_round_robin",
    "random",
    "least_request",
    "peak_ewma",
    "ring_hash",
    "maglev",
]


def _condition(value: Any) -> str:
    # an HTTP status may be written bare (503) as well as quoted ("503")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        value = found_value(value)
    try:
        return check_condition(value)
    except ValueError as error:
        raise PydanticCustomError("condition", str(error)) from None


def _case_insensitive(name: str) -> str:
    return "".join(
        f"[{c.upper()}{c.lower()}]" if c.isalpha() else "[_-]" if c == "_" else c for c in name
    )


_CONDITION_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"enum": sorted(CONDITION_KEYWORDS)},
        {"type": "integer", "minimum": 100, "maximum": 599},
        {"type": "string", "pattern": r"^[1-5][0-9][0-9]$"},
        {
            "type": "string",
            "pattern": "^[Gg][Rr][Pp][Cc]:("
            + "|".join(_case_insensitive(n) for n in sorted(GRPC_STATUS_NAMES))
            + ")$",
        },
    ]
}
Condition = Annotated[str, BeforeValidator(_condition), WithJsonSchema(_CONDITION_SCHEMA)]
Conditions = Annotated[list[Condition], Field(max_length=MAX_CONDITIONS)]


def _prime(value: int) -> int:
    if not is_prime(value):
        raise PydanticCustomError(
            "prime",
            "expected a prime number (Maglev's table size), found {found}",
            {"found": value},
        )
    return value


MaglevTableSize = Annotated[
    int, Field(ge=MIN_MAGLEV_TABLE_SIZE, le=MAX_MAGLEV_TABLE_SIZE), AfterValidator(_prime)
]


_PLAIN_IPV4 = re.compile(
    r"((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
)


def _address(value: Any) -> str:
    if isinstance(value, str) and _PLAIN_IPV4.fullmatch(value):
        return value  # already canonical; the common case, kept off ipaddress's slow path
    if isinstance(value, str):
        try:
            parsed = ipaddress.ip_address(value)
        except ValueError:
            pass
        else:
            # fe80::1%eth0 names an interface of one host: no zone record or peer can use it
            if not (isinstance(parsed, ipaddress.IPv6Address) and parsed.scope_id):
                return str(parsed)
            raise PydanticCustomError(
                "address",
                "expected an IPv4 or IPv6 address without a scope (%interface), found {found}",
                {"found": repr(value)},
            )
    raise PydanticCustomError(
        "address",
        "expected an IPv4 or IPv6 address, found {found}",
        {"found": repr(value) if isinstance(value, str) else str(value)},
    )


Address = Annotated[
    str,
    BeforeValidator(_address),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}]}
    ),
]


OFF_TAG = "<off>"
VALUE_TAG = "<value>"
"""The tags of an ``OrOff`` union (the JSON Schema generator recognises it by them)."""


def _off_tag(value: Any) -> str:
    return OFF_TAG if value == OFF else VALUE_TAG


_T = TypeVar("_T")
OrOff = Annotated[
    Annotated[_T, Tag(VALUE_TAG)] | Annotated[Off, Tag(OFF_TAG)], Discriminator(_off_tag)
]
"""``OrOff[X]``: an X, or ``off`` to switch an inherited policy off."""


class SpecModel(BaseModel):
    """Base of the spec models: immutable, unknown fields rejected."""

    # strict: "3" is not an integer and true is not 1, as in the JSON Schema
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        strict=True,
        allow_inf_nan=False,  # .inf and .nan are YAML floats, but never a sensible setting
        use_attribute_docstrings=True,
    )


# --- policies -----------------------------------------------------------------------------


class BackoffSpec(SpecModel):
    base: Duration | None = None
    max: Duration | None = None
    jitter: JitterName | None = None
    multiplier: Multiplier | None = None


BudgetTokens = Annotated[float, Field(ge=0, le=MAX_BUDGET_TOKENS)]


class RetryBudgetSpec(SpecModel):
    kind: Literal["window", "bucket"] | None = None
    """``window`` (default): Finagle's budget, ``ratio`` of the requests in the last
    ``window`` plus ``min_per_second``. ``bucket``: a token bucket (``initial``, ``cap``,
    ``threshold``), as Brooker's, gRPC's retryThrottling and the AWS SDKs'."""
    ratio: Ratio | None = None
    """Tokens deposited per request (a retry takes one)."""
    min_per_second: Rate | None = None
    window: Duration | None = None
    initial: BudgetTokens | None = None
    """``bucket``: tokens at the start (default: ``cap``, a full bucket)."""
    cap: Annotated[float, Field(ge=1, le=MAX_BUDGET_TOKENS)] | None = None
    """``bucket``: the most tokens it holds (default 100)."""
    threshold: BudgetTokens | None = None
    """``bucket``: a retry is refused when it would leave fewer tokens than this (default 0)."""
    scope: Literal["process", "service"] | None = None
    """``process`` (default): each caller process has its own budget. ``service``: one
    budget for every replica of the calling service, shared through the store the runtime is
    given (Redis); without one, each process keeps its own."""


class RetryStopSpec(SpecModel):
    """Stop retrying while the share of recent requests whose first try failed is above
    ``failure_rate`` (first tries always go)."""

    failure_rate: Ratio | None = None
    window: Duration | None = None
    minimum_requests: Annotated[int, Field(ge=1, le=MAX_COUNT)] | None = None


class RetrySpec(SpecModel):
    attempts: Annotated[int, Field(ge=1, le=MAX_ATTEMPTS)] | None = None
    """Total tries, the first included."""
    per_try_timeout: OrOff[Duration] | None = None
    backoff: BackoffSpec | None = None
    on: Conditions | None = None
    budget: OrOff[RetryBudgetSpec] | None = None
    stop_above: OrOff[RetryStopSpec] | None = None


def _hedge_delay(value: Any) -> float | str:
    if isinstance(value, str) and re.fullmatch(PERCENTILE_PATTERN, value.strip()):
        return value.strip()
    return parse_duration(value)


HedgeDelay = Annotated[
    float | str,
    BeforeValidator(_hedge_delay),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "string", "pattern": PERCENTILE_PATTERN},
            ],
            "description": "a duration (50ms), or a percentile of the edge's recent attempt "
            "latencies (p95)",
        }
    ),
]


class HedgeSpec(SpecModel):
    """Hedged requests: another attempt when one has been outstanding for ``delay``."""

    delay: HedgeDelay | None = None
    """Required (here or in a layer it inherits from): about the edge's p95 latency, given
    as a duration or as ``p95`` (measured by each caller from its recent attempts)."""
    max_attempts: Annotated[int, Field(ge=2, le=MAX_HEDGE_ATTEMPTS)] | None = None
    """Attempts started by hedging, the first included (default 2)."""
    non_fatal: Conditions | None = None
    """Outcomes after which the call goes on (default connect-failure, timeout, 5xx); any
    other ends it."""


class AdaptiveThrottleSpec(SpecModel):
    k: Multiplier | None = None
    window: Duration | None = None


class CountWindowSpec(SpecModel):
    kind: Literal["count"]
    size: Annotated[int, Field(ge=1, le=MAX_COUNT_WINDOW)]


class TimeWindowSpec(SpecModel):
    kind: Literal["time"]
    size: Annotated[WholeSeconds, Field(le=MAX_TIME_WINDOW_SECONDS)]


def _window_tag(value: Any) -> str | None:
    kind = value.get("kind") if isinstance(value, dict) else None
    return f"<{kind}>" if kind in ("count", "time") else None


Window = Annotated[
    Annotated[CountWindowSpec, Tag("<count>")] | Annotated[TimeWindowSpec, Tag("<time>")],
    Discriminator(
        _window_tag,
        custom_error_type="window",
        custom_error_message="expected a window {kind: count, size: N} or {kind: time, size: 60s}",
    ),
]


class SlowCallSpec(SpecModel):
    over: Duration | None = None
    rate: Ratio | None = None


class CircuitBreakerSpec(SpecModel):
    mode: Literal["rate", "consecutive"] | None = None
    window: Window | None = None
    """Replaced as a whole when overridden (a count and a time window do not mix)."""
    minimum_calls: PositiveInt | None = None
    failure_rate: Ratio | None = None
    slow_calls: OrOff[SlowCallSpec] | None = None
    consecutive_failures: PositiveInt | None = None
    open_for: Duration | None = None
    open_for_max: OrOff[Duration] | None = None
    open_for_multiplier: Multiplier | None = None
    half_open_calls: PositiveInt | None = None
    failure_on: Conditions | None = None


class LoadBalancerSpec(SpecModel):
    strategy: StrategyName | None = None
    choices: Annotated[int, Field(ge=2, le=MAX_CHOICES)] | None = None
    panic_threshold: Ratio | None = None
    ewma_decay: Duration | None = None
    hash_on: Annotated[SafeText, StringConstraints(max_length=MAX_HASH_ON_LENGTH)] | None = None
    ring_size: Annotated[int, Field(ge=1, le=MAX_RING_SIZE)] | None = None
    maglev_table_size: MaglevTableSize | None = None


class OutlierDetectionSpec(SpecModel):
    consecutive_failures: PositiveInt | None = None
    base_ejection: Duration | None = None
    max_ejection: Duration | None = None
    max_ejected: Ratio | None = None


MAX_ALERT_AFTER = 3600.0


class ObjectiveSpec(SpecModel):
    success_rate: Ratio | None = None
    """The edge's success-rate SLO; the compiler turns it into alert rules."""
    alert_after: Annotated[Duration, Field(le=MAX_ALERT_AFTER)] | None = None
    """How long the error ratio must stay above the objective before the alert fires (the
    rule's ``for:``); default 5m, at most 1h (the bundle's promtool tests step through it)."""


class EdgePolicySpec(SpecModel):
    """What a caller applies to an upstream; every field optional (inherited when absent)."""

    timeout: Duration | None = None
    """The whole call, retries included."""
    retry: OrOff[RetrySpec] | None = None
    adaptive_throttle: OrOff[AdaptiveThrottleSpec] | None = None
    circuit_breaker: OrOff[CircuitBreakerSpec] | None = None
    load_balancer: LoadBalancerSpec | None = None
    outlier_detection: OrOff[OutlierDetectionSpec] | None = None
    concurrency_limit: OrOff[PositiveInt] | None = None
    hedge: OrOff[HedgeSpec] | None = None
    objective: ObjectiveSpec | None = None


class EdgeSpec(EdgePolicySpec):
    """One upstream edge: its policy overrides, and what lint should know about it."""

    lint: EdgeLintSpec | None = None


# --- lint facts and suppressions (read by ``meshspec lint`` only) ------------------------

LINT_CODE_PATTERN = r"^W[0-9]{4}$"
LintCode = Annotated[str, StringConstraints(pattern=LINT_CODE_PATTERN)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=r"\S")]
"""Why a warning is accepted: required, so a suppression always explains itself."""


class EdgeLintSpec(SpecModel):
    """What ``meshspec lint`` should know about one edge; never part of the bundle."""

    traffic: Rate | None = None
    """Calls a second the caller sends on this edge in normal operation (all its instances)."""
    idempotent: bool | None = None
    """``false``: repeating a call may repeat its effect (a payment, a write)."""
    suppress: dict[LintCode, Reason] = Field(default_factory=dict)
    """Lint code -> why its warning on this edge is accepted."""


class ServiceLintSpec(SpecModel):
    latency: Duration | None = None
    """The service's typical latency of one request (its own upstream calls included)."""


class LintSettings(SpecModel):
    max_amplification: Annotated[float, Field(ge=1, le=1e6)] | None = None
    """W0101 fires above this worst-case multiplier (default 10; ``--max-amplification``)."""


# --- health checks --------------------------------------------------------------------------

HEALTH_CHECK_KINDS = ("http", "tcp", "grpc", "ttl")


class HealthCheckSpec(SpecModel):
    """At most one kind (http, tcp, grpc, ttl) per level; a service's kind replaces the
    default's, the timings merge field by field."""

    http: Annotated[str, StringConstraints(pattern=HTTP_PATH_PATTERN, max_length=512)] | None = None
    """The path to GET on each instance, e.g. /healthz."""
    tcp: Literal[True] | None = None
    """``true``: connect to the instance's port."""
    grpc: Annotated[str, StringConstraints(pattern=GRPC_SERVICE_PATTERN)] | None = None
    """The gRPC health service name to ask for ("" for the whole server)."""
    ttl: Duration | None = None
    """The instance reports in itself at least this often."""
    interval: Duration | None = None
    timeout: Duration | None = None
    deregister_after: OrOff[Duration] | None = None
    success_threshold: PositiveInt | None = None
    failure_threshold: PositiveInt | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> HealthCheckSpec:
        kinds = [kind for kind in HEALTH_CHECK_KINDS if getattr(self, kind) is not None]
        if len(kinds) > 1:
            raise PydanticCustomError(
                "health_check_kind",
                "expected one kind of health check (http, tcp, grpc or ttl), found {found}",
                {"found": " and ".join(kinds)},
            )
        return self

    def kind(self) -> str | None:
        return next((k for k in HEALTH_CHECK_KINDS if getattr(self, k) is not None), None)


# --- services and the mesh ------------------------------------------------------------------


class InstanceSpec(SpecModel):
    address: Address
    port: Port | None = None
    """``None``: the service's port."""
    weight: Weight = 1
    id: InstanceId | None = None
    """Stable identifier; ``<service>-<index>`` when absent."""


class ServiceSpec(SpecModel):
    port: Port
    protocol: Literal["http", "grpc", "tcp"] = "http"
    tags: list[SafeText] = Field(default_factory=list)
    meta: dict[MetaKey, MetaValue] = Field(default_factory=dict, max_length=MAX_META_PAIRS)
    instances: Annotated[list[InstanceSpec], Field(min_length=1)]
    health_check: OrOff[HealthCheckSpec] | None = None
    defaults: EdgePolicySpec | None = None
    """Policies for all of this service's upstream edges, over the mesh defaults."""
    upstreams: dict[DnsLabel, EdgeSpec | None] = Field(default_factory=dict)
    """Upstream service name -> per-edge overrides (``{}`` or empty: inherit everything)."""
    lint: ServiceLintSpec | None = None


class MeshDefaults(EdgePolicySpec):
    """Mesh-wide defaults: every edge's policies, and every service's health check."""

    health_check: OrOff[HealthCheckSpec] | None = None


class DnsSpec(SpecModel):
    zone: DnsName
    ttl: Annotated[WholeSeconds, Field(le=MAX_DNS_TTL)] = 30
    """Seconds."""


class MeshSettings(SpecModel):
    name: DnsLabel
    datacenter: DnsLabel = "dc1"
    dns: DnsSpec


class EnvironmentOverlay(SpecModel):
    """A partial spec merged onto the base (see docs/spec.md); checked after merging."""

    mesh: dict[str, Any] | None = None
    defaults: dict[str, Any] | None = None
    services: dict[str, dict[str, Any] | None] | None = None


class MeshSpec(SpecModel):
    """A whole mesh spec document."""

    api_version: Literal["meshspec/v1"] = Field(alias="apiVersion")
    mesh: MeshSettings
    defaults: MeshDefaults = MeshDefaults()
    services: dict[DnsLabel, ServiceSpec]
    environments: dict[DnsLabel, EnvironmentOverlay] = Field(default_factory=dict)
    lint: LintSettings | None = None
    # Memoised resolution (meshspec.spec.resolve.Resolver); not part of the spec.
    _resolver: Any = PrivateAttr(default=None)

    def edge_count(self) -> int:
        return sum(len(service.upstreams) for service in self.services.values())


register_pattern(
    DNS_LABEL_PATTERN,
    "E0108",
    "a DNS label (lowercase letters, digits and '-', starting with a letter, not ending "
    "with '-', at most 63 characters)",
)
register_pattern(
    DNS_NAME_PATTERN, "E0113", "a DNS name (dot-separated DNS labels, lowercase, e.g. shop.mesh)"
)
register_pattern(SAFE_TEXT_PATTERN, "E0109", "text of the characters A-Z a-z 0-9 . _ : / = + @ -")
register_pattern(
    SAFE_TEXT_OR_EMPTY_PATTERN, "E0109", "text of the characters A-Z a-z 0-9 . _ : / = + @ -"
)
register_pattern(
    META_KEY_PATTERN,
    "E0109",
    "a meta key (a letter, then letters, digits, '_' or '-', at most 128 characters)",
)
register_pattern(
    INSTANCE_ID_PATTERN, "E0109", "an id of letters, digits, '.', '_' and '-' (at most 128)"
)
register_pattern(
    HTTP_PATH_PATTERN, "E0109", "an HTTP path: '/' then letters, digits and . _ ~ / = % + : @ -"
)
register_pattern(LINT_CODE_PATTERN, "E0109", "a lint code such as W0101")
register_pattern(GRPC_SERVICE_PATTERN, "E0109", "a gRPC service name such as pkg.v1.Health")
