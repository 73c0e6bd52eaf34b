"""The Prometheus collector of a ``Mesh`` (extra ``meshspec-runtime[prometheus]``).

``Mesh.open(..., metrics=registry)`` registers a :class:`MeshCollector` on the caller's
registry (never the global one). At scrape time it builds fresh metric families from the
runtime's own counters: the per-edge call logs (``observe.calls``) and the totals the policy
objects keep. The request path never touches prometheus-client, and a scrape changes no policy
state: the breaker's state is read as last moved, ejections without returning anyone.
Names, types and labels come from ``observe.names``, as the compiled alert rules' do.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from meshspec_runtime.observe import names
from meshspec_runtime.observe.calls import CallLog, PeriodicFold
from meshspec_runtime.policy.breaker import BreakerState

if TYPE_CHECKING:
    from meshspec_runtime.mesh import Mesh, MeshUpstream


def _family(metric: names.Metric) -> Metric:
    labels = list(metric.labels)
    if metric.type == "counter":
        return CounterMetricFamily(metric.family, metric.help, labels=labels)
    if metric.type == "gauge":
        return GaugeMetricFamily(metric.family, metric.help, labels=labels)
    return HistogramMetricFamily(metric.family, metric.help, labels=labels)


class MeshCollector(Collector):
    """Reads a mesh's counters at scrape time; see the module docstring."""

    def __init__(self, mesh: Mesh) -> None:
        self._mesh = mesh
        self._transitions: dict[str, Counter[BreakerState]] = {}
        self._lock = threading.Lock()
        for name in mesh.upstreams:
            self.watch(mesh.upstream(name))
        self._fold = PeriodicFold(self._logs)
        self._fold.start()

    def close(self) -> None:
        """Stop folding in the background (the mesh unregisters the collector)."""
        self._fold.stop()

    def _logs(self) -> Iterator[CallLog]:
        for name in self._mesh.upstreams:
            log = self._mesh.upstream(name).policies.call_log
            if log is not None:
                yield log

    def watch(self, handle: MeshUpstream) -> None:
        """Start counting ``handle``'s calls (its policies get a call log) and transitions."""
        policies = handle.policies
        if policies.call_log is None:
            policies.call_log = CallLog(policies.failure_on, policies.retry_on)
        counted = self._transitions.setdefault(handle.name, Counter())
        if policies.breaker is not None:

            def transition(old: BreakerState, new: BreakerState, at: float) -> None:
                with self._lock:
                    counted[new] += 1

            policies.breaker.add_listener(transition)

    def describe(self) -> Iterable[Metric]:
        return []  # families vary with the mesh; an empty describe defers to collect

    def collect(self) -> Iterator[Metric]:
        mesh = self._mesh
        now = mesh.clock()
        family = {metric.name: _family(metric) for metric in names.METRICS}
        info = family[names.BUNDLE_INFO.name]
        assert isinstance(info, GaugeMetricFamily)
        info.add_metric([mesh.service, mesh.mesh, mesh.version], 1)
        reloads = family[names.RELOADS.name]
        assert isinstance(reloads, CounterMetricFamily)
        for result in names.RELOAD_RESULTS:
            reloads.add_metric([mesh.service, result], mesh.reloads[result])
        for upstream in mesh.upstreams:
            self._edge(family, mesh.upstream(upstream), now)
        yield from family.values()

    def _edge(self, family: dict[str, Metric], handle: MeshUpstream, now: float) -> None:
        edge = [self._mesh.service, handle.name]
        policies = handle.policies

        def add(metric: names.Metric, value: float, *extra: str) -> None:
            target = family[metric.name]
            assert isinstance(target, CounterMetricFamily | GaugeMetricFamily)
            target.add_metric([*edge, *extra], value)

        add(names.ENDPOINTS, len(policies.balancer.hosts))
        watch = self._mesh.discovery
        if watch is not None:
            service = self._mesh.upstream_service(handle.name)
            add(names.DISCOVERY_STALENESS, watch.staleness(service, now))
            add(names.DISCOVERY_FAILURES, watch.failures_total(service))
        log = policies.call_log
        counts = log.snapshot() if log is not None else None
        if counts is not None:
            for outcome, requests, attempts in zip(
                names.OUTCOMES, counts.requests, counts.attempts, strict=True
            ):
                add(names.REQUESTS, requests, outcome)
                add(names.ATTEMPTS, attempts, outcome)
            add(names.RETRIES, counts.retries)
            for reason, refused in counts.refused.items():
                add(names.RETRIES_REFUSED, refused, reason)
            if policies.hedge is not None:  # hedge series only on hedged edges
                for event, total in counts.hedges.items():
                    add(names.HEDGES, total, event)
            cumulative, buckets = 0, []
            for bound, count in zip(
                (*map(str, names.DURATION_BUCKETS), "+Inf"), counts.buckets, strict=True
            ):
                cumulative += count
                buckets.append((bound, cumulative))
            histogram = family[names.DURATION.name]
            assert isinstance(histogram, HistogramMetricFamily)
            histogram.add_metric(edge, buckets, counts.duration_sum)
        if policies.budget is not None and counts is not None:
            add(names.BUDGET_EXHAUSTED, counts.refused["budget"])
        view = getattr(policies.budget, "view", None)  # a shared budget's (shared.budget)
        if view is not None:
            add(names.BUDGET_SHARED, 1 if view.sharing else 0)
            add(names.BUDGET_FALLBACKS, view.fallbacks)
        breaker = policies.breaker
        if breaker is not None:
            current = breaker.current_state
            for state in BreakerState:
                add(names.BREAKER_STATE, 1 if state is current else 0, state.value)
            with self._lock:
                transitions = dict(self._transitions.get(handle.name, {}))
            for state in BreakerState:
                add(names.BREAKER_TRANSITIONS, transitions.get(state, 0), state.value)
            add(names.BREAKER_REJECTIONS, breaker.rejected_total)
        if policies.throttle is not None:
            add(names.THROTTLE_REJECTIONS, policies.throttle.rejected_total)
        if policies.bulkhead is not None:
            add(names.CONCURRENCY_REJECTIONS, policies.bulkhead.rejected_total)
        outlier = policies.outlier
        if outlier is not None:
            add(names.EJECTED, outlier.ejected_count(now))
            add(names.EJECTIONS, outlier.ejections_total)
