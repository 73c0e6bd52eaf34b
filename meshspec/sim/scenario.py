"""The scenario language: pydantic models of a ``kind: Scenario`` document.

Values are lowered as they are read (durations to seconds, rates to requests per second,
percentages to fractions), so the world never parses text. Cross-references to the mesh
(service names, edges) are checked later, against the loaded spec, by :mod:`meshspec.sim.load`.
"""

from __future__ import annotations

import itertools
import math
import re
from typing import Annotated, Literal

from meshspec_runtime.discovery.cache import DiscoverySettings
from meshspec_runtime.policy.limits import MAX_COUNT
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from meshspec.sim.caps import MAX_CLIENTS, MAX_RATE, MAX_RUN_SECONDS, MAX_SEED
from meshspec.sim.units import Offset, Percent, PositiveDuration
from meshspec.sim.units import Rate as AnyRate

Z_P99 = 2.3263478740408408
"""The standard normal quantile of 0.99: a lognormal's p99 is ``exp(mu + Z_P99 * sigma)``."""
MAX_QUANTILES = 1000
"""Points of an empirical latency distribution (``quantiles``)."""
MAX_LOG = 700.0
"""Largest log of a service time: ``exp`` overflows a float a little above 709."""
# Durations and rates are the spec's units, finite and bounded by the runtime's limits
# (meshspec_runtime.policy.limits); the simulator's own caps (meshspec.sim.caps) bound what a
# single run may ask for. Counts are at most the runtime's MAX_COUNT.
Rate = Annotated[AnyRate, Field(le=MAX_RATE)]
Count = Annotated[int, Field(ge=1, le=MAX_COUNT)]
RunLength = Annotated[PositiveDuration, Field(le=MAX_RUN_SECONDS)]


class ScenarioModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


# --- traffic ---------------------------------------------------------------------------------


DisturbanceName = Annotated[
    str, Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9._@#-]*$")
]
"""What an expectation calls a fault, spike or ramp: ``checkout.recovery_time[name]``."""


class Ramp(ScenarioModel):
    """From ``at`` for ``for``, the rate moves linearly to ``to`` and then stays there."""

    name: DisturbanceName | None = None
    at: Offset
    for_: PositiveDuration = Field(alias="for")
    to: Rate


class Spike(ScenarioModel):
    """From ``at`` for ``for``, the rate is ``rate`` (whatever the base or ramps say)."""

    name: DisturbanceName | None = None
    at: Offset
    for_: PositiveDuration = Field(alias="for")
    rate: Rate


class Traffic(ScenarioModel):
    """Requests entering the mesh at one service.

    Open loop (``rate``: arrivals do not wait for answers) or closed loop (``clients`` each
    sending one request, waiting for its answer, then thinking for ``think``).
    """

    to: str
    rate: Rate | None = None
    arrival: Literal["poisson", "constant"] = "poisson"
    ramps: tuple[Ramp, ...] = ()
    spikes: tuple[Spike, ...] = ()
    clients: Annotated[int, Field(ge=1, le=MAX_CLIENTS)] | None = None
    think: Offset = 0.0
    start: Offset = 0.0
    stop: Offset | None = None
    """Stop sending at this time (default: the end of the run)."""
    timeout: PositiveDuration = 30.0
    """How long the outside client waits for an answer."""

    @model_validator(mode="after")
    def _one_kind(self) -> Traffic:
        if (self.rate is None) == (self.clients is None):
            raise ValueError("give either rate (open loop) or clients (closed loop), not both")
        if self.clients is not None and (self.ramps or self.spikes):
            raise ValueError("ramps and spikes apply to open-loop traffic (rate), not clients")
        return self

    def rate_at(self, t: float) -> float:
        """The open-loop arrival rate at time ``t`` (0 outside start..stop)."""
        if t < self.start or (self.stop is not None and t >= self.stop):
            return 0.0
        rate = self.rate or 0.0
        for ramp in self.ramps:
            if t >= ramp.at + ramp.for_:
                rate = ramp.to
            elif t >= ramp.at:
                rate = rate + (ramp.to - rate) * (t - ramp.at) / ramp.for_
                break
        for spike in self.spikes:
            if spike.at <= t < spike.at + spike.for_:
                rate = spike.rate
        return rate

    def peak_rate(self) -> float:
        return max([self.rate or 0.0, *(r.to for r in self.ramps), *(s.rate for s in self.spikes)])


# --- behaviour -------------------------------------------------------------------------------


_QUANTILE_KEY = re.compile(r"^p(100|[0-9]{1,2}(\.[0-9]+)?)$")


Quantiles = Annotated[dict[str, Offset], Field(min_length=2, max_length=MAX_QUANTILES)]


class Latency(ScenarioModel):
    """A distribution of times: a service time, or a one-way network delay.

    One of: ``fixed``; ``median`` + ``p99`` (a lognormal fitted to them); ``mu`` + ``sigma``
    (lognormal parameters of the time in seconds); ``exponential`` (its mean); ``mean`` +
    ``sd`` (a normal truncated at zero); ``quantiles`` (an empirical distribution, linear
    between the quantiles given: ``{p0: 1ms, p50: 4ms, p99: 30ms, p100: 80ms}``). ``slope``
    adds that much per request in service at the instance (base + slope x concurrency).
    """

    fixed: Offset | None = None
    median: PositiveDuration | None = None
    p99: PositiveDuration | None = None
    mu: float | None = None
    sigma: Annotated[float, Field(ge=0)] | None = None
    exponential: PositiveDuration | None = None
    """The mean of an exponential distribution (memoryless: the M/M/n service time)."""
    mean: PositiveDuration | None = None
    sd: Offset | None = None
    quantiles: (
        Annotated[dict[str, Offset], Field(min_length=2, max_length=MAX_QUANTILES)] | None
    ) = None
    slope: Offset = 0.0

    @model_validator(mode="after")
    def _one_form(self) -> Latency:
        forms = {
            "fixed": self.fixed is not None,
            "median and p99": self.median is not None or self.p99 is not None,
            "mu and sigma": self.mu is not None or self.sigma is not None,
            "exponential": self.exponential is not None,
            "mean and sd": self.mean is not None or self.sd is not None,
            "quantiles": self.quantiles is not None,
        }
        if sum(forms.values()) != 1:
            raise ValueError(f"give exactly one of: {'; '.join(forms)}")
        if forms["median and p99"] and (self.median is None or self.p99 is None):
            raise ValueError("median and p99 go together")
        median, p99 = self.median, self.p99
        if median is not None and p99 is not None and p99 < median:
            raise ValueError(f"p99 ({p99}s) is below the median ({median}s)")
        if forms["mu and sigma"] and (self.mu is None or self.sigma is None):
            raise ValueError("mu and sigma go together")
        if forms["mean and sd"] and (self.mean is None or self.sd is None):
            raise ValueError("mean and sd go together")
        mu, sigma = self.mu, self.sigma
        # exp() of a draw must stay a float: mu + 9 sigma is beyond any draw in practice
        if (
            mu is not None
            and sigma is not None
            and (not (math.isfinite(mu) and math.isfinite(sigma)) or mu + 9 * sigma > MAX_LOG)
        ):
            raise ValueError(
                f"mu ({mu}) and sigma ({sigma}) give service times beyond what a float"
                f" holds (mu + 9 sigma must be at most {MAX_LOG})"
            )
        if self.quantiles is not None:
            self.quantile_points()  # raises when a key or the order is wrong
        return self

    def quantile_points(self) -> tuple[tuple[float, float], ...]:
        """``(probability, time)`` of the empirical form, by probability; ValueError when a
        key is not ``p<percent>`` or a later quantile is shorter than an earlier one."""
        points = []
        for key, value in (self.quantiles or {}).items():
            if not _QUANTILE_KEY.match(key):
                raise ValueError(f"quantile {key!r}: expected p0 ... p100, e.g. p50 or p99.9")
            points.append((float(key[1:]) / 100, value))
        points.sort()
        for (p, t), (q, u) in itertools.pairwise(points):
            if u < t:
                raise ValueError(f"p{q * 100:g} ({u:g}s) is below p{p * 100:g} ({t:g}s)")
        return tuple(points)

    def lognormal(self) -> tuple[float, float] | None:
        """``(mu, sigma)`` of the lognormal form, or None for another form."""
        if self.median is not None and self.p99 is not None:
            mu = math.log(self.median)
            return mu, (math.log(self.p99) - mu) / Z_P99
        if self.mu is not None and self.sigma is not None:
            return self.mu, self.sigma
        return None

    def typical(self) -> float:
        """The median time (for estimates)."""
        fitted = self.lognormal()
        if fitted is not None:
            return math.exp(fitted[0])
        if self.exponential is not None:
            return self.exponential * math.log(2)
        if self.mean is not None:
            return self.mean
        if self.quantiles is not None:
            points = self.quantile_points()
            return min(points, key=lambda point: abs(point[0] - 0.5))[1]
        return self.fixed or 0.0


class Behaviour(ScenarioModel):
    """How the instances of one service behave. Unset fields come from ``behaviour.default``."""

    latency: Latency | None = None
    concurrency: Count | None = None
    """Requests served at once per instance; None: unlimited."""
    queue: Annotated[int, Field(ge=0, le=MAX_COUNT)] | None = None
    """Requests waiting for a slot per instance; beyond that the instance answers 503."""
    errors: Percent | None = None
    """Share of requests answered with a 500 even when healthy."""
    hangs: Percent | None = None
    """Share of requests never answered even when healthy (their callers time out)."""
    abandon: bool | None = None
    """True: work still queued when its caller gave up is dropped. False (default): it runs."""
    calls: dict[str, Percent] = Field(default_factory=dict)
    """Fan-out probability per upstream edge of the spec (default 100% for every edge)."""


# --- faults ----------------------------------------------------------------------------------


class FaultBase(ScenarioModel):
    name: DisturbanceName | None = None
    """What expectations call it (default ``<fault>@<at>``, e.g. ``crash@5s``)."""
    at: Offset
    for_: PositiveDuration | None = Field(default=None, alias="for")
    """How long the fault lasts (default: to the end of the run)."""

    def end(self, duration: float) -> float:
        return duration if self.for_ is None else min(duration, self.at + self.for_)


class InstanceFault(FaultBase):
    service: str
    instances: Percent | Count | list[str] | None = None
    """Which instances: a share (``50%``, the first ones), a count, or ids. Default: all."""

    def pick(self, ids: list[str]) -> list[str]:
        chosen = self.instances
        if chosen is None:
            return list(ids)
        if isinstance(chosen, list):
            return [i for i in ids if i in chosen]
        if isinstance(chosen, float):
            return ids[: math.ceil(chosen * len(ids) - 1e-9)]
        return ids[:chosen]


class Crash(InstanceFault):
    """The instances refuse connections (connect-failure), then restart when the fault ends."""

    fault: Literal["crash"]


class Hang(InstanceFault):
    """The instances accept requests and never answer ``rate`` of them (callers time out)."""

    fault: Literal["hang"]
    rate: Annotated[Percent, Field(gt=0)] = 1.0


class Errors(InstanceFault):
    """The instances answer ``rate`` of requests with ``status``."""

    fault: Literal["errors"]
    rate: Percent
    status: Annotated[int, Field(ge=400, le=599)] = 500


class AddedLatency(InstanceFault):
    fault: Literal["latency"]
    add: Offset


class Capacity(InstanceFault):
    """Capacity drops to ``to``: the concurrency limit scales by it (or, for instances without a
    limit, service times scale by its inverse)."""

    fault: Literal["capacity"]
    to: Annotated[Percent, Field(gt=0)]
    """Above zero: an instance with no capacity at all is a ``hang``."""


class Partition(FaultBase):
    """Requests between the two services get no answer (both directions)."""

    fault: Literal["partition"]
    between: tuple[str, str]


class DiscoveryOutage(FaultBase):
    """Discovery delivers no updates (about ``service``, or any) until the fault ends."""

    fault: Literal["discovery-outage"]
    service: str | None = None


class DiscoveryStale(FaultBase):
    """Discovery updates arrive ``add`` later than usual (a stale DNS cache, a slow catalog)."""

    fault: Literal["discovery-stale"]
    service: str | None = None
    add: Offset


class StoreOutage(FaultBase):
    """The store of the shared retry budgets (``scope: service``; Redis in production) is
    unreachable: every exchange fails after ``budget_store.timeout``, budgets fall back to
    their local shares, and rejoin once it answers again."""

    fault: Literal["budget-store-outage"]


Fault = Annotated[
    Crash
    | Hang
    | Errors
    | AddedLatency
    | Capacity
    | Partition
    | DiscoveryOutage
    | DiscoveryStale
    | StoreOutage,
    Field(discriminator="fault"),
]
InstanceFaults = Crash | Hang | Errors | AddedLatency | Capacity


# --- the rest --------------------------------------------------------------------------------


class Discovery(ScenarioModel):
    """How fast a health change reaches callers once the health check has noticed it, and how
    the callers' discovery caches (the runtime's ``DiscoverySettings``) behave. A cache field
    left unset takes the runtime's default."""

    propagation: Offset = 1.0
    jitter: Offset = 0.0
    """Each caller gets the update after propagation + uniform(0, jitter)."""
    max_staleness: PositiveDuration | None = None
    """How long callers keep the last known good set while reads fail (runtime: 300s)."""
    wait: PositiveDuration | None = None
    """How long one blocking read waits for a change (runtime: 30s)."""
    retry_delay: PositiveDuration | None = None
    """Pause before reading again after a failure, breaker closed (runtime: 500ms)."""
    failure_threshold: Count | None = None
    """Failed reads in a row that open the source's breaker (runtime: 3)."""
    backoff_base: PositiveDuration | None = None
    """First probe delay once the breaker is open, doubling per failed probe (runtime: 1s)..."""
    backoff_cap: PositiveDuration | None = None
    """...up to this (runtime: 30s)."""

    @model_validator(mode="after")
    def _valid_cache(self) -> Discovery:
        # a cap below its base fails here, located, not in the run
        try:
            self.cache_settings()
        except ValueError as error:
            defaults = DiscoverySettings()
            unset = [
                f"{name} {getattr(defaults, name):g}{'' if name == 'failure_threshold' else 's'}"
                for name in CACHE_FIELDS
                if getattr(self, name) is None
            ]
            hint = f" (unset, so the runtime's: {', '.join(unset)})" if unset else ""
            raise ValueError(f"{error}{hint}") from None
        return self

    def cache_settings(self) -> DiscoverySettings:
        """The runtime's settings of every caller's discovery cache."""
        given = {
            name: getattr(self, name) for name in CACHE_FIELDS if getattr(self, name) is not None
        }
        return DiscoverySettings(**given)


CACHE_FIELDS = (
    "max_staleness",
    "wait",
    "retry_delay",
    "failure_threshold",
    "backoff_base",
    "backoff_cap",
)
"""The fields of :class:`Discovery` that set the runtime's ``DiscoverySettings``."""


class SharedStore(ScenarioModel):
    """The store retry budgets of ``scope: service`` share through, as the runtime's
    ``RedisStore`` uses it: every budget of every caller instance exchanges with it each
    ``period``; an answer takes ``latency`` (there and back)."""

    latency: Offset = 0.001
    timeout: PositiveDuration = 0.25
    """How long an exchange waits before it counts as failed (during an outage)."""
    period: PositiveDuration = 0.1


class Recovery(ScenarioModel):
    """A service has recovered from a disturbance when every 1 s bucket from then on (until
    the next disturbance starts) has at least ``ratio`` of the success rate it had before the
    first disturbance (or ``success_rate``, when given)."""

    ratio: Percent = 0.99
    success_rate: Percent | None = None


class Environment(ScenarioModel):
    """What changes when the spec is loaded with one of its environments (``--env``)."""

    expect: tuple[str, ...] = ()
    """Replaces the top-level ``expect``: each client strategy has its own figures."""


class Scenario(ScenarioModel):
    api_version: Literal["meshspec/v1"] = Field(alias="apiVersion")
    kind: Literal["Scenario"]
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9._-]*$")]
    description: str = ""
    mesh: str | None = None
    """Path of the mesh spec, relative to the scenario file (the command line may give one)."""
    env: str | None = None
    duration: RunLength
    warmup: Offset = 0.0
    """The latency totals (mean and percentiles) leave out requests that end before it: a
    queue filling from empty would otherwise pull them down. Whole seconds (metrics are kept
    per second); counts, rates and series cover the whole run."""
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 0
    traffic: Annotated[tuple[Traffic, ...], Field(min_length=1)]
    behaviour: dict[str, Behaviour] = Field(default_factory=dict)
    """Per service; the key ``default`` applies to every service that does not say."""
    faults: tuple[Fault, ...] = ()
    network: dict[str, Latency] = Field(default_factory=dict)
    """One-way network delay of each attempt, drawn each way (request, then answer), per edge
    (``caller->upstream``, or ``@traffic->entry`` for outside clients); ``default`` applies to
    every edge of the mesh that is not named."""
    discovery: Discovery = Discovery()
    budget_store: SharedStore = SharedStore()
    recovery: Recovery = Recovery()
    expect: tuple[str, ...] = ()
    environments: dict[str, Environment] = Field(default_factory=dict)
    """Per environment of the spec: expectations that replace ``expect`` under it."""

    @field_validator("warmup")
    @classmethod
    def _whole_seconds(cls, warmup: float) -> float:
        if warmup != math.floor(warmup):
            whole = math.ceil(warmup)
            raise ValueError(
                f"{warmup:g}s: give whole seconds (metrics are kept per second), e.g. {whole}s"
            )
        return warmup
