"""Counters the world fills on its hot path, and their summary (totals and 1 s time series).

The hot path only increments list slots indexed by the second and appends to typed arrays;
everything else (rates, percentiles, recovery time) is computed once, at the end, with numpy.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from meshspec_runtime.observe import names
from meshspec_runtime.policy.call import Done, Fail, FailReason
from meshspec_runtime.policy.outcome import ConditionSet, OutcomeKind

ENTRY = "@traffic"
"""The caller name of requests entering the mesh from the scenario's traffic."""


def _zeros(n: int) -> list[int]:
    return [0] * n


class EdgeCounters:
    """One caller service -> one upstream service (or the traffic -> the entry service)."""

    __slots__ = (
        "attempts",
        "breaker_half_open",
        "breaker_open",
        "breakers",
        "budget_refused",
        "caller",
        "calls",
        "completed_attempts",
        "ejected",
        "ejections",
        "failed",
        "failures",
        "latency",
        "latency_second",
        "ok",
        "retries_denied",
        "trips",
        "upstream",
    )

    def __init__(self, caller: str, upstream: str, seconds: int) -> None:
        self.caller = caller
        self.upstream = upstream
        self.calls = _zeros(seconds)
        """Logical requests that ended in that second."""
        self.ok = _zeros(seconds)
        self.attempts = _zeros(seconds)
        """Attempts started in that second."""
        self.completed_attempts = 0
        """Attempts of the logical requests that ended (amplification counts these, so a run's
        cut-off does not skew it)."""
        self.retries_denied = 0
        self.failures: Counter[str] = Counter()
        self.failed: dict[str, list[int]] = {}
        """Logical requests that ended in that second, by failed ``outcome`` label (as the
        runtime's metrics label them; see :func:`outcome_label`); a list appears with the
        first failure of its kind."""
        self.budget_refused: list[int] | None = None
        """Calls that ended because the retry budget refused a retry, by second (None: none)."""
        self.latency = array("d")
        """Latency of each successful logical request (retries and waits included)."""
        self.latency_second = array("l")
        self.breakers = 0
        """Caller instances with a breaker on this edge."""
        self.breaker_open = [0.0] * seconds
        """Share of those breakers open, sampled once a second."""
        self.breaker_half_open = [0.0] * seconds
        self.ejected = [0.0] * seconds
        """Mean ejected endpoints per caller instance, sampled once a second."""
        self.trips = 0
        self.ejections = 0

    @property
    def name(self) -> str:
        return f"{self.caller}->{self.upstream}"

    def count_end(self, step: Done | Fail, second: int, failure_on: ConditionSet) -> None:
        """Label a call that ended with ``step`` (not through the success fast path)."""
        outcome = outcome_label(step, failure_on)
        if outcome != SUCCESS:
            series = self.failed.get(outcome)
            if series is None:
                series = self.failed[outcome] = _zeros(len(self.calls))
            series[second] += 1
        if type(step) is Fail and step.reason is FailReason.BUDGET_EXHAUSTED:
            if self.budget_refused is None:
                self.budget_refused = _zeros(len(self.calls))
            self.budget_refused[second] += 1


SUCCESS, ERROR, TIMEOUT, CONNECT_FAILURE, REJECTED = names.OUTCOMES
_REJECTIONS = frozenset(
    {
        FailReason.BREAKER_OPEN,
        FailReason.THROTTLED,
        FailReason.CONCURRENCY_LIMIT,
        FailReason.NO_ENDPOINT,
    }
)
_BY_KIND = {
    OutcomeKind.TIMEOUT: TIMEOUT,
    OutcomeKind.CONNECT_FAILURE: CONNECT_FAILURE,
    OutcomeKind.RESET: ERROR,
    OutcomeKind.ERROR: ERROR,
}


def outcome_label(step: Done | Fail, failure_on: ConditionSet) -> str:
    """The ``outcome`` label (``names.OUTCOMES``) the runtime's collector gives a call that
    ended with ``step`` (``meshspec_runtime.observe.calls``; a test holds the two together):
    a rejection or a call that never made an attempt is ``rejected``, a deadline ``timeout``,
    else the last attempt's outcome, an answer being ``error`` when ``failure_on`` matches."""
    if isinstance(step, Done):
        last = step.outcome
    elif step.reason in _REJECTIONS or step.last is None:
        return REJECTED
    elif step.reason is FailReason.DEADLINE_EXCEEDED:
        return TIMEOUT
    else:
        last = step.last
    if last.kind is OutcomeKind.ANSWER:
        return ERROR if failure_on.matches(last) else SUCCESS
    return _BY_KIND[last.kind]


class ServiceCounters:
    __slots__ = ("name", "received", "rejected", "served")

    def __init__(self, name: str, seconds: int) -> None:
        self.name = name
        self.received = _zeros(seconds)
        """Attempts that reached an instance."""
        self.served = _zeros(seconds)
        """Successful answers."""
        self.rejected = _zeros(seconds)
        """Answered 503 at once: concurrency limit and queue full."""


@dataclass(frozen=True, slots=True)
class FaultWindow:
    kind: str
    target: str
    start: float
    end: float


@dataclass
class Recorder:
    """Everything one run counts."""

    duration: float
    seconds: int
    """Length of the time series: the run's whole seconds."""
    slots: int
    """Length of the counter arrays: the run plus the drain after traffic stops."""
    services: dict[str, ServiceCounters] = field(default_factory=dict)
    edges: dict[str, EdgeCounters] = field(default_factory=dict)
    faults: list[FaultWindow] = field(default_factory=list)

    def service(self, name: str) -> ServiceCounters:
        counters = self.services.get(name)
        if counters is None:
            counters = self.services[name] = ServiceCounters(name, self.slots)
        return counters

    def edge(self, caller: str, upstream: str) -> EdgeCounters:
        counters = EdgeCounters(caller, upstream, self.slots)
        return self.edges.setdefault(counters.name, counters)


# --- summary ---------------------------------------------------------------------------------

Number = float | int | None


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def _percentiles(values: np.ndarray[Any, Any]) -> dict[str, float | None]:
    if values.size == 0:
        return {"latency_p50": None, "latency_p99": None, "latency_p999": None}
    p50, p99, p999 = np.percentile(values, [50, 99, 99.9])
    return {"latency_p50": float(p50), "latency_p99": float(p99), "latency_p999": float(p999)}


def _series_percentiles(
    latency: np.ndarray[Any, Any], second: np.ndarray[Any, Any], seconds: int, q: float
) -> list[float | None]:
    out: list[float | None] = [None] * seconds
    if latency.size == 0:
        return out
    order = np.lexsort((latency, second))
    lat, sec = latency[order], second[order]
    bounds = np.searchsorted(sec, np.arange(seconds + 1))
    for s in range(seconds):
        lo, hi = bounds[s], bounds[s + 1]
        if hi > lo:
            out[s] = float(lat[lo + min(hi - lo - 1, int(q * (hi - lo)))])
    return out


def _success_series(calls: list[int], ok: list[int]) -> list[float | None]:
    return [o / c if c else None for c, o in zip(calls, ok, strict=True)]


def recovery_time(
    calls: list[int], ok: list[int], faults: list[FaultWindow], ratio: float, floor: float | None
) -> float | None:
    """Seconds from the end of the last fault until every later 1 s bucket meets the bar.

    The bar is ``floor`` when given, else ``ratio`` x the success rate before the first fault.
    None: not recovered by the end of the run.
    """
    if not faults:
        return 0.0
    first = min(f.start for f in faults)
    last = max(f.end for f in faults)
    before_calls = sum(calls[: int(first)])
    baseline = sum(ok[: int(first)]) / before_calls if before_calls else 1.0
    bar = floor if floor is not None else ratio * baseline
    start = int(last)
    if start >= len(calls):
        return None
    recovered_at: float | None = None
    for s in range(start, len(calls)):
        if calls[s] and ok[s] / calls[s] < bar:
            recovered_at = None
        elif recovered_at is None:
            recovered_at = float(s)
    if recovered_at is None:
        return None
    return max(0.0, recovered_at - last)


def summarise(rec: Recorder, ratio: float, floor: float | None) -> dict[str, Any]:
    """Totals and time series, as plain JSON-able data."""
    d, n = rec.duration, rec.seconds
    entry_requests = sum(sum(e.calls) for e in rec.edges.values() if e.caller == ENTRY)
    edges: dict[str, dict[str, Any]] = {}
    edge_series: dict[str, dict[str, Any]] = {}
    into: dict[str, list[EdgeCounters]] = {name: [] for name in rec.services}
    for name, e in rec.edges.items():
        into.setdefault(e.upstream, []).append(e)
        calls, ok, attempts = sum(e.calls), sum(e.ok), sum(e.attempts)
        lat = np.frombuffer(e.latency, dtype=np.float64)
        edges[name] = {
            "requests": calls,
            "success_rate": _ratio(ok, calls),
            "goodput": ok / d,
            "offered": attempts / d,
            "load_amplification": _ratio(e.completed_attempts, calls),
            "retries_denied": e.retries_denied,
            "breaker_open_time": sum(e.breaker_open),
            "breaker_trips": e.trips,
            "ejections": e.ejections,
            "failures": dict(sorted(e.failures.items())),
            **_percentiles(lat),
        }
        edge_series[name] = {
            "requests": e.calls[:n],
            "success_rate": _success_series(e.calls[:n], e.ok[:n]),
            "attempts": e.attempts[:n],
            "breaker_open": e.breaker_open[:n],
            "breaker_half_open": e.breaker_half_open[:n],
            "ejected": e.ejected[:n],
            # The ``outcome`` labels of the failed requests and the budget's refusals (only
            # those that occurred): the alert rules' input (meshspec.sim.alerts).
            "failed": {label: e.failed[label][:n] for label in names.OUTCOMES if label in e.failed},
            "budget_refused": e.budget_refused[:n] if e.budget_refused is not None else None,
        }
    services: dict[str, dict[str, Any]] = {}
    service_series: dict[str, dict[str, Any]] = {}
    for name, s in rec.services.items():
        inbound = into.get(name, [])
        slots = rec.slots
        calls_s = [sum(c) for c in zip(*(e.calls for e in inbound), strict=True)] or [0] * slots
        ok_s = [sum(c) for c in zip(*(e.ok for e in inbound), strict=True)] or [0] * slots
        att_s = [sum(c) for c in zip(*(e.attempts for e in inbound), strict=True)] or [0] * slots
        calls, ok, attempts = sum(calls_s), sum(ok_s), sum(att_s)
        completed = sum(e.completed_attempts for e in inbound)
        lat = np.concatenate(
            [np.frombuffer(e.latency, dtype=np.float64) for e in inbound] or [np.empty(0)]
        )
        sec = np.concatenate(
            [np.frombuffer(e.latency_second, dtype=np.int64) for e in inbound]
            or [np.empty(0, dtype=np.int64)]
        )
        breakers = sum(e.breakers for e in inbound)
        open_s = [
            sum(e.breaker_open[i] * e.breakers for e in inbound) / breakers if breakers else 0.0
            for i in range(n)
        ]
        # Series cover the run; totals also count what ended while the run drained.
        failures: Counter[str] = Counter()
        for e in inbound:
            failures.update(e.failures)
        services[name] = {
            "requests": calls,
            "success_rate": _ratio(ok, calls),
            "goodput": ok / d,
            "offered": attempts / d,
            "received": sum(s.received) / d,
            "served": sum(s.served) / d,
            "rejected": sum(s.rejected),
            "load_amplification": _ratio(completed, calls),
            "relative_load": _ratio(completed, entry_requests),
            "retries_denied": sum(e.retries_denied for e in inbound),
            "breaker_open_time": sum(open_s),
            "breaker_trips": sum(e.trips for e in inbound),
            "ejections": sum(e.ejections for e in inbound),
            "recovery_time": recovery_time(calls_s[:n], ok_s[:n], rec.faults, ratio, floor),
            "failures": dict(sorted(failures.items())),
            **_percentiles(lat),
        }
        service_series[name] = {
            "requests": calls_s[:n],
            "success_rate": _success_series(calls_s[:n], ok_s[:n]),
            "goodput": ok_s[:n],
            "offered": att_s[:n],
            "received": s.received[:n],
            "served": s.served[:n],
            "latency_p50": _series_percentiles(lat, sec, n, 0.5),
            "latency_p99": _series_percentiles(lat, sec, n, 0.99),
            "breaker_open": open_s,
        }
    return {
        "duration": d,
        "entry_requests": entry_requests,
        "faults": [
            {"kind": f.kind, "target": f.target, "start": f.start, "end": f.end} for f in rec.faults
        ],
        "services": services,
        "edges": edges,
        "series": {"services": service_series, "edges": edge_series},
    }


def rounded(value: Any, digits: int = 6) -> Any:
    """``value`` with every float rounded to ``digits`` significant digits (stable, short JSON);
    non-finite floats become None."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value
