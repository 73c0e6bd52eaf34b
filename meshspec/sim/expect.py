"""Expectations: ``checkout.success_rate >= 99.5%``, ``a->b.load_amplification <= 1.3``,
``alert(MeshspecUpstreamErrorRatioHigh, checkout->payments) fires within 2m``.

Grammar (whitespace around the operator is optional)::

    expectation := subject "." metric ["[" disturbance "]"] op value | alert
    subject     := service | service "->" service
    disturbance := a fault, spike or ramp by name (recovery_time only)
    op          := ">=" | "<=" | ">" | "<" | "=="
    value       := number [unit]     unit: % (ratios), x (multiples), ms s m (times), /s (rates)
    alert       := "alert(" ALERTNAME "," service "->" service ")" verdict
    verdict     := "fires within" duration | "does not fire"     duration: 90s, 2m, 1m30s

Alert names are those the compiler's rules define (meshspec.compile.emitters.prometheus);
:mod:`meshspec.sim.alerts` evaluates them with the bundle's own rules through promtool.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

from pydantic_core import PydanticCustomError

from meshspec.sim.units import parse_offset


class Kind(Enum):
    RATIO = "ratio"
    """A fraction; written as 99.5% or 0.995."""
    MULTIPLE = "multiple"
    """A plain number; written as 1.3 or 1.3x."""
    TIME = "time"
    """Seconds; written as 30s, 250ms, 1m."""
    RATE = "rate"
    """Per second; written as 200/s or 200."""
    COUNT = "count"


SERVICE_METRICS: dict[str, Kind] = {
    "success_rate": Kind.RATIO,
    "goodput": Kind.RATE,
    "offered": Kind.RATE,
    "received": Kind.RATE,
    "served": Kind.RATE,
    "load_amplification": Kind.MULTIPLE,
    "relative_load": Kind.MULTIPLE,
    "latency_mean": Kind.TIME,
    "latency_p50": Kind.TIME,
    "latency_p99": Kind.TIME,
    "latency_p999": Kind.TIME,
    "recovery_time": Kind.TIME,
    "breaker_open_time": Kind.TIME,
    "retries_denied": Kind.COUNT,
    "breaker_trips": Kind.COUNT,
    "ejections": Kind.COUNT,
    "requests": Kind.COUNT,
    "rejected": Kind.COUNT,
}
EDGE_METRICS: dict[str, Kind] = {
    name: kind
    for name, kind in SERVICE_METRICS.items()
    if name not in ("received", "served", "rejected", "relative_load", "recovery_time")
}
PER_DISTURBANCE = {"recovery_time": "recovery"}
"""Metrics measured per disturbance -> the summary's table of them (by disturbance name)."""
ALIASES = {
    "mean_latency": "latency_mean",
    "p50": "latency_p50",
    "p99": "latency_p99",
    "p999": "latency_p999",
}

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}

_NAME = r"[a-z][a-z0-9-]*"
_EXPECTATION = re.compile(
    rf"^\s*(?P<caller>{_NAME})(?:\s*->\s*(?P<upstream>{_NAME}))?\.(?P<metric>[a-z0-9_]+)"
    r"(?:\[(?P<disturbance>[a-z0-9][a-z0-9._@#-]*)\])?"
    r"\s*(?P<op>>=|<=|==|>|<)\s*(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>%|x|ms|s|m|/s)?\s*$"
)
_UNITS: dict[str, tuple[Kind, float]] = {
    "%": (Kind.RATIO, 0.01),
    "x": (Kind.MULTIPLE, 1.0),
    "ms": (Kind.TIME, 0.001),
    "s": (Kind.TIME, 1.0),
    "m": (Kind.TIME, 60.0),
    "/s": (Kind.RATE, 1.0),
}


def known_alerts() -> tuple[str, ...]:
    """Every alert the compiled rules may define (docs/metrics.md).

    The compiler is imported here, when an alert expectation is read, not with this module:
    a run without alert expectations does not pay for it."""
    from meshspec.compile.emitters import prometheus

    return (prometheus.ERROR_RATIO_ALERT, prometheus.BREAKER_ALERT, prometheus.BUDGET_ALERT)


_ALERT = re.compile(
    rf"^\s*alert\s*\(\s*(?P<alert>[A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*(?P<caller>{_NAME})\s*->\s*"
    rf"(?P<upstream>{_NAME})\s*\)\s*(?:fires\s+within\s+(?P<within>\S+)|(?P<quiet>does\s+not\s+fire))"
    r"\s*$"
)
_ALERT_START = re.compile(r"^\s*alert\s*\(")


class ExpectationError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Expectation:
    text: str
    caller: str
    upstream: str | None
    metric: str
    op: str
    value: float
    kind: Kind
    disturbance: str | None = None
    """``recovery_time[name]``: the recovery from that disturbance alone."""

    @property
    def subject(self) -> str:
        return self.caller if self.upstream is None else f"{self.caller}->{self.upstream}"

    @property
    def services(self) -> tuple[str, ...]:
        return (self.caller,) if self.upstream is None else (self.caller, self.upstream)


@dataclass(frozen=True, slots=True)
class AlertExpectation:
    """``alert(NAME, caller->upstream) fires within DURATION`` (``within`` in seconds, counted
    from the start of the run) or ``... does not fire`` (``within`` is None)."""

    text: str
    alert: str
    caller: str
    upstream: str
    within: float | None
    kind: ClassVar[Kind] = Kind.TIME
    """What the measured value is: the time the alert first fired."""

    @property
    def fires(self) -> bool:
        return self.within is not None

    @property
    def subject(self) -> str:
        return f"{self.caller}->{self.upstream}"

    @property
    def services(self) -> tuple[str, ...]:
        return (self.caller, self.upstream)


AnyExpectation = Expectation | AlertExpectation


def did_you_mean(name: str, known: tuple[str, ...] | list[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``known``, or ``""``."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def parse_alert(text: str) -> AlertExpectation:
    """Parse ``alert(NAME, caller->upstream) fires within D`` or ``... does not fire``."""
    match = _ALERT.match(text)
    if match is None:
        raise ExpectationError(
            "expected 'alert(ALERTNAME, caller->upstream) fires within DURATION' or "
            f"'alert(ALERTNAME, caller->upstream) does not fire', found {text!r}"
        )
    alert = match["alert"]
    alerts = known_alerts()
    if alert not in alerts:
        known = ", ".join(alerts)
        raise ExpectationError(
            f"unknown alert {alert!r}{did_you_mean(alert, alerts)} (alerts: {known})"
        )
    within = None
    if match["within"] is not None:
        try:
            within = parse_offset(match["within"])
        except PydanticCustomError as error:
            raise ExpectationError(f"fires within: {error}") from None
    return AlertExpectation(text.strip(), alert, match["caller"], match["upstream"], within)


def parse(text: str) -> AnyExpectation:
    """Parse one expectation; ExpectationError says what is wrong with it."""
    if _ALERT_START.match(text):
        return parse_alert(text)
    match = _EXPECTATION.match(text)
    if match is None:
        raise ExpectationError(
            f"expected an expectation such as 'checkout.success_rate >= 99.5%' "
            f"(subject.metric op value), found {text!r}"
        )
    caller, upstream = match["caller"], match["upstream"]
    metric = ALIASES.get(match["metric"], match["metric"])
    table = SERVICE_METRICS if upstream is None else EDGE_METRICS
    kind = table.get(metric)
    if kind is None:
        what = "service" if upstream is None else "edge"
        raise ExpectationError(
            f"unknown {what} metric {match['metric']!r}; expected one of: {', '.join(table)}"
        )
    disturbance = match["disturbance"]
    if disturbance is not None and metric not in PER_DISTURBANCE:
        raise ExpectationError(
            f"only {', '.join(PER_DISTURBANCE)} can name a disturbance ([{disturbance}])"
        )
    value = float(match["number"])
    unit = match["unit"]
    if unit is not None:
        unit_kind, scale = _UNITS[unit]
        if unit_kind is not kind:
            raise ExpectationError(
                f"{metric} is a {kind.value}; the unit {unit!r} is for a {unit_kind.value}"
            )
        value *= scale
    elif kind is Kind.TIME:
        raise ExpectationError(f"{metric} is a time: give a unit such as 30s or 250ms")
    elif kind is Kind.RATIO and value > 1:
        raise ExpectationError(f"{metric} is a ratio: write {value:g}% or a fraction up to 1")
    return Expectation(
        text.strip(), caller, upstream, metric, match["op"], value, kind, disturbance
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    expectation: AnyExpectation
    measured: float | None
    """An alert expectation's: when the alert first fired (seconds into the run; the latest
    over seeds for ``fires within``, the earliest for ``does not fire``), None: never."""
    passed: bool
    ci: tuple[float, float] | None = None
    """95% confidence interval of the mean, when several seeds ran."""
    fired_at: tuple[float | None, ...] | None = None
    """An alert expectation's: when the alert first fired in each seed (None: it did not)."""

    @property
    def shown(self) -> str:
        """The measured value as the console and the reports show it."""
        exp = self.expectation
        if not isinstance(exp, AlertExpectation):
            return format_value(exp.kind, self.measured, exp.metric)
        seeds = self.fired_at or ()
        fired = sum(t is not None for t in seeds)
        if not fired:
            return "did not fire"
        if self.measured is None:  # fires within: some seeds never fired
            return f"did not fire in {len(seeds) - fired} of {len(seeds)} seeds"
        text = f"fired at {format_value(Kind.TIME, self.measured)}"
        if exp.fires and len(seeds) > 1:
            text += f" (the latest of {len(seeds)} seeds)"
        elif len(seeds) > 1:
            text += f" (the earliest; in {fired} of {len(seeds)} seeds)"
        return text

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "expectation": self.expectation.text,
            "measured": self.measured,
            "shown": self.shown,
            "passed": self.passed,
            "ci95": list(self.ci) if self.ci else None,
        }
        if self.fired_at is not None:
            out["fired_at"] = list(self.fired_at)
        return out


def judge_alert(exp: AlertExpectation, fired_at: tuple[float | None, ...]) -> Verdict:
    """``fired_at``: when the alert first fired in each seed. ``fires within`` passes when it
    fired within the time in every seed (measured: the latest), ``does not fire`` when it
    fired in none (measured: the earliest, if any did)."""
    times = [t for t in fired_at if t is not None]
    if exp.within is None:
        return Verdict(exp, min(times) if times else None, not times, fired_at=fired_at)
    every = bool(times) and len(times) == len(fired_at)
    latest = max(times) if every else None
    passed = latest is not None and latest <= exp.within
    return Verdict(exp, latest, passed, fired_at=fired_at)


def measure(exp: Expectation, summary: dict[str, Any]) -> float | None:
    table = summary["services"] if exp.upstream is None else summary["edges"]
    row = table.get(exp.subject)
    if row is None:
        return None
    if exp.disturbance is not None:
        value = row.get(PER_DISTURBANCE[exp.metric], {}).get(exp.disturbance)
    else:
        value = row.get(exp.metric)
    return None if value is None else float(value)


def judge(
    exp: Expectation, measured: float | None, ci: tuple[float, float] | None = None
) -> Verdict:
    """None (not recovered, no requests) fails every comparison."""
    passed = measured is not None and OPERATORS[exp.op](measured, exp.value)
    return Verdict(exp, measured, passed, ci)


NOT_RECOVERED = "not recovered"
"""How a recovery that never happened is shown."""


def plain_number(value: float, digits: int) -> str:
    """``value`` to ``digits`` significant digits, as a person writes it: 2500 and 0.125,
    never 2.5e+03 or 1.25e-01 (digits left of the point are all kept)."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else f"{value:g}"
    magnitude = math.floor(math.log10(abs(value)))
    text = f"{value:.{max(digits - 1 - magnitude, 0)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_value(kind: Kind, value: float | None, metric: str = "") -> str:
    if value is None:
        return NOT_RECOVERED if metric in PER_DISTURBANCE else "n/a"
    if kind is Kind.RATIO:
        return f"{plain_number(value * 100, 3)}%"
    if kind is Kind.TIME:  # by size: -2.5s not -2500ms, and 0.9996 is 1s not 1000ms
        if abs(float(plain_number(value, 3))) < 1:
            return f"{plain_number(value * 1000, 3)}ms"
        return f"{plain_number(value, 3)}s"
    if kind is Kind.MULTIPLE:
        return f"{plain_number(value, 3)}x"
    if kind is Kind.RATE:
        return f"{plain_number(value, 4)}/s"
    # counts are whole; a fraction is a mean (or a CI) over seeds
    return str(int(value)) if value == int(value) else plain_number(value, 3)
