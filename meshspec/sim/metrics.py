"""Counters the world fills on its hot path, and their summary (totals and 1 s time series).

The hot path only increments list slots indexed by the second and appends to typed arrays;
everything else (rates, percentiles, recovery time) is computed once, at the end. In plain
Python: most edges of a large mesh carry a handful of requests or none, where numpy's cost per
call (and its import, 0.04 s of a 1,000-service command) outweighed what it saved.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from meshspec_runtime.observe import names
from meshspec_runtime.observe.calls import call_label
from meshspec_runtime.policy.call import Done, Fail, FailReason
from meshspec_runtime.policy.outcome import ConditionSet

MAX_EVENTS = 500
"""Timeline events kept per edge: a flapping breaker on every caller instance would
otherwise list thousands."""
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
        "events",
        "failed",
        "failures",
        "latency",
        "latency_second",
        "ok",
        "refusals",
        "retries",
        "retries_denied",
        "timeouts",
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
        self.retries = _zeros(seconds)
        """Retries of the calls that ended in that second."""
        self.timeouts = _zeros(seconds)
        """Attempts that timed out in that second."""
        self.refusals = _zeros(seconds)
        """Calls the policies ended in that second (breaker open, throttled, budget, ...)."""
        self.events: list[tuple[float, str]] = []
        """(time, what happened): breaker transitions, at most MAX_EVENTS."""

    def event(self, now: float, text: str) -> None:
        if len(self.events) < MAX_EVENTS:
            self.events.append((now, text))

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
outcome_label = call_label
"""The runtime collector's label of a call's end (``meshspec_runtime.observe.calls``)."""


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
    """A disturbance: a fault, a traffic spike or a ramp, from ``start`` to ``end``."""

    kind: str
    target: str
    start: float
    end: float
    name: str = ""


@dataclass
class Recorder:
    """Everything one run counts."""

    duration: float
    seconds: int
    """Length of the time series: the run's whole seconds."""
    slots: int
    """Length of the counter arrays: the run plus the drain after traffic stops."""
    warmup: int = 0
    """Whole seconds at the start whose requests the latency totals leave out."""
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


def _percentiles(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {
            "latency_mean": None,
            "latency_p50": None,
            "latency_p99": None,
            "latency_p999": None,
        }
    ordered = sorted(values)
    # fsum is exact; the division rounds once more, which can leave the mean of equal values
    # an ulp outside them.
    mean = min(max(math.fsum(ordered) / len(ordered), ordered[0]), ordered[-1])
    return {
        "latency_mean": mean,
        "latency_p50": percentile(ordered, 50),
        "latency_p99": percentile(ordered, 99),
        "latency_p999": percentile(ordered, 99.9),
    }


def percentile(ordered: Sequence[float], p: float) -> float:
    """The ``p``-th percentile of the sorted, non-empty ``ordered``, interpolated linearly
    between the two nearest ranks: the same float as ``numpy.percentile``'s default method,
    operation for operation (its lerp from the nearer end, for stability)."""
    position = (len(ordered) - 1) * (p / 100)
    below = math.floor(position)
    if below >= len(ordered) - 1:
        return ordered[-1]
    low, high = ordered[below], ordered[below + 1]
    t = position - below
    step = high - low
    return high - step * (1 - t) if t >= 0.5 else low + step * t


def _after_warmup(latency: array[float], second: array[int], warmup: int) -> Sequence[float]:
    """The latencies of the requests that ended at or after ``warmup`` (whole seconds)."""
    if not warmup:
        return latency
    return [value for value, ended in zip(latency, second, strict=True) if ended >= warmup]


def _series_percentiles(
    latency: array[float], second: array[int], seconds: int, qs: list[float]
) -> list[list[float | None]]:
    """Per quantile of ``qs``: its value in each second (None: no latency that second), the
    value at rank ``int(q * n)`` of that second's ``n``."""
    out: list[list[float | None]] = [[None] * seconds for _ in qs]
    if not latency:
        return out
    by_second: list[list[float]] = [[] for _ in range(seconds)]
    for value, ended in zip(latency, second, strict=True):
        if ended < seconds:
            by_second[ended].append(value)
    for s, values in enumerate(by_second):
        if values:
            values.sort()
            last = len(values) - 1
            for series, q in zip(out, qs, strict=True):
                series[s] = values[min(last, int(q * len(values)))]
    return out


def _success_series(calls: list[int], ok: list[int]) -> list[float | None]:
    return [o / c if c else None for c, o in zip(calls, ok, strict=True)]


def recovery_times(
    calls: list[int],
    ok: list[int],
    disturbances: list[FaultWindow],
    ratio: float,
    floor: float | None,
) -> dict[str, float | None]:
    """Per disturbance: seconds from its end until the success rate is back at the bar and
    stays there until the next disturbance starts (or the run ends); None: not recovered.

    The bar is ``floor`` when given, else ``ratio`` x the success rate before the first
    disturbance. A disturbance followed at once by another (no whole second between them)
    recovers when that one does.
    """
    if not disturbances:
        return {}
    first = min(d.start for d in disturbances)
    before_calls = sum(calls[: int(first)])
    baseline = sum(ok[: int(first)]) / before_calls if before_calls else 1.0
    bar = floor if floor is not None else ratio * baseline
    seconds = len(calls)
    by_start = sorted(disturbances, key=lambda d: (d.start, d.end))

    def recovered(at: float) -> float | None:
        """Seconds after ``at`` (a disturbance's end) until the series is back for good."""
        begin = int(at)
        if begin >= seconds:
            return None  # the run ended first: no time to recover in
        following = next((d for d in by_start if d.start >= at), None)
        stop = min(int(following.start), seconds) if following is not None else seconds
        if following is not None and begin >= stop:
            if following.end <= at:
                return None
            later = recovered(following.end)
            return None if later is None else later + (following.end - at)
        recovered_at: float | None = None
        for s in range(begin, stop):
            if calls[s] and ok[s] / calls[s] < bar:
                recovered_at = None
            elif recovered_at is None:
                recovered_at = float(s)
        return None if recovered_at is None else max(0.0, recovered_at - at)

    return {d.name: recovered(d.end) for d in disturbances}


def worst_recovery(times: dict[str, float | None]) -> float | None:
    """The service's ``recovery_time``: the slowest recovery (None if any is missing; 0.0
    for a run without disturbances)."""
    if any(t is None for t in times.values()):
        return None
    return max([t for t in times.values() if t is not None], default=0.0)


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
            **_percentiles(_after_warmup(e.latency, e.latency_second, rec.warmup)),
        }
        edge_series[name] = {
            "requests": e.calls[:n],
            "success_rate": _success_series(e.calls[:n], e.ok[:n]),
            "attempts": e.attempts[:n],
            "breaker_open": e.breaker_open[:n],
            "retries": e.retries[:n],
            "timeouts": e.timeouts[:n],
            "refusals": e.refusals[:n],
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
        lat, sec = array("d"), array("l")
        for e in inbound:
            lat.extend(e.latency)
            sec.extend(e.latency_second)
        recovery = recovery_times(calls_s[:n], ok_s[:n], rec.faults, ratio, floor)
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
            "recovery_time": worst_recovery(recovery),
            "recovery": recovery,
            "failures": dict(sorted(failures.items())),
            **_percentiles(_after_warmup(lat, sec, rec.warmup)),
        }
        p50_s, p99_s = _series_percentiles(lat, sec, n, [0.5, 0.99])
        service_series[name] = {
            "requests": calls_s[:n],
            "success_rate": _success_series(calls_s[:n], ok_s[:n]),
            "goodput": ok_s[:n],
            "offered": att_s[:n],
            "received": s.received[:n],
            "served": s.served[:n],
            "latency_p50": p50_s,
            "latency_p99": p99_s,
            "breaker_open": open_s,
            **{
                kind: [sum(c) for c in zip(*(getattr(e, kind)[:n] for e in inbound), strict=True)]
                or [0] * n
                for kind in ("retries", "timeouts", "refusals")
            },
        }
    return {
        "duration": d,
        "timeline": timeline(rec),
        "entry_requests": entry_requests,
        "faults": [
            {"name": f.name, "kind": f.kind, "target": f.target, "start": f.start, "end": f.end}
            for f in rec.faults
        ],
        "services": services,
        "edges": edges,
        "series": {"services": service_series, "edges": edge_series},
    }


def timeline(rec: Recorder) -> list[dict[str, Any]]:
    """What happened when, per service and edge: disturbances starting and ending, breaker
    transitions; in time order."""
    events: list[tuple[float, str, str]] = []
    for f in rec.faults:
        events.append((f.start, f.target, f"{f.name} starts ({f.kind})"))
        if f.end < rec.duration:
            events.append((f.end, f.target, f"{f.name} ends"))
    for name, e in rec.edges.items():
        events.extend((t, name, text) for t, text in e.events)
    events.sort(key=lambda item: item[0])
    return [{"t": t, "subject": subject, "event": text} for t, subject, text in events]


def rounded(value: Any, digits: int = 6) -> Any:
    """``value`` with every float rounded to ``digits`` significant digits (stable, short JSON);
    non-finite floats become None. Dicts (their subclasses too) come back as dicts, lists and
    tuples as lists; anything else as it is."""
    spec = f".{digits}g"
    finite = math.isfinite

    def walk(item: Any) -> Any:
        kind = type(item)
        if kind is int or kind is str or item is None:
            return item
        if kind is float or isinstance(item, float):
            return float(format(item, spec)) if finite(item) else None
        if kind is dict or isinstance(item, dict):
            return {key: walk(element) for key, element in item.items()}
        if kind is list or isinstance(item, list | tuple):
            # series are mostly counts: no call for an int
            return [element if type(element) is int else walk(element) for element in item]
        return item

    return walk(value)
