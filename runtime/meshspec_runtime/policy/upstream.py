"""The policy state one client keeps for one upstream, shared by every call to it.

Built once per (caller, upstream) pair from the bundle's resolved ``UpstreamPolicy``: every
setting is turned into plain attributes and policy objects here, at construction, so the call
path never touches pydantic. Thread-safe: the breaker, budget, throttle, bulkhead and outlier
detector guard their state with one lock they share (none of them calls another while holding
it); balancer picks and feedback are lock-free (see ``balancer.base``);
updates of the endpoint set and of availability (health, ejections) are serialised by one lock,
never held while calling user code or listeners.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from meshspec_runtime.bundle import Endpoint, ServicePolicies
from meshspec_runtime.policy.backoff import Backoff, backoff_for
from meshspec_runtime.policy.balancer import Balancer, Host, balancer_for
from meshspec_runtime.policy.balancer.base import NO_IDS
from meshspec_runtime.policy.breaker import BreakerListener, CircuitBreaker
from meshspec_runtime.policy.budget import Budget, budget_for
from meshspec_runtime.policy.bulkhead import Bulkhead
from meshspec_runtime.policy.call import (
    FINISHED,
    OVERLOAD_STATUSES,
    READY,
    Call,
    Fail,
    FailReason,
)
from meshspec_runtime.policy.config import (
    DEFAULT_FAILURE_ON,
    BackoffConfig,
    HedgeConfig,
    UpstreamPolicy,
    percentile_quantile,
)
from meshspec_runtime.policy.hedge import HedgedCall
from meshspec_runtime.policy.latency import RecentPercentile
from meshspec_runtime.policy.outcome import ConditionSet, OutcomePredicate, condition_set
from meshspec_runtime.policy.outlier import OutlierDetector
from meshspec_runtime.policy.retry_stop import RetryStop
from meshspec_runtime.policy.throttle import AdaptiveThrottle

if TYPE_CHECKING:
    from meshspec_runtime.observe.calls import CallLog

_ALL_STATUSES = frozenset(range(100, 600))
_NO_FAST_ANSWERS: frozenset[int | None] = frozenset()


@lru_cache(maxsize=1024)
def _answer_sets(
    failure_on: tuple[str, ...], retry_on: tuple[str, ...]
) -> tuple[frozenset[int], frozenset[int | None]]:
    """``(benign, fast)`` for these conditions: the HTTP statuses that no failure or retry
    condition matches and that do not signal overload, and the same with None (an answer
    without a status). Computed once per distinct pair, shared by every ``UpstreamPolicies``
    (the simulator builds one per caller instance and edge)."""
    matched = (
        condition_set(failure_on).answer_statuses() | condition_set(retry_on).answer_statuses()
    )
    benign = _ALL_STATUSES - matched - OVERLOAD_STATUSES
    return benign, frozenset({None, *benign})


@lru_cache(maxsize=1024)
def shared_backoff(config: BackoffConfig) -> Backoff:
    """The backoff strategy of ``config``, built once per distinct config (it is immutable)."""
    return backoff_for(config)


EjectionListener = Callable[[frozenset[str], frozenset[str], float], None]
"""``listener(ejected, returned, now)``: endpoint ids newly ejected, and back from ejection."""


class UpstreamPolicies:
    """Balancer, breaker, retry budget, adaptive throttle, outlier detector and bulkhead of one
    upstream, and :meth:`start` to begin a call through them."""

    __slots__ = (
        "_ejected",
        "_unhealthy",
        "backoff",
        "balancer",
        "benign_statuses",
        "breaker",
        "budget",
        "bulkhead",
        "call_log",
        "ejection_listeners",
        "failure_on",
        "fast_answers",
        "hedge",
        "hedge_latency",
        "lock",
        "max_attempts",
        "non_fatal",
        "outlier",
        "per_try_timeout",
        "plain_finish",
        "policy",
        "retry_on",
        "retry_predicate",
        "retry_stop",
        "rng",
        "throttle",
        "timeout",
    )

    def __init__(
        self,
        policy: UpstreamPolicy,
        endpoints: Sequence[Endpoint],
        *,
        rng: random.Random,
        retry_predicate: OutcomePredicate | None = None,
        breaker_listeners: Iterable[BreakerListener] = (),
    ) -> None:
        self.policy = policy
        self.rng = rng
        retry = policy.retry
        self.timeout = policy.timeout
        self.per_try_timeout = (
            retry.per_try_timeout if retry.per_try_timeout is not None else math.inf
        )
        self.max_attempts = retry.attempts
        self.backoff = shared_backoff(retry.backoff)
        self.retry_on = (
            condition_set(retry.on)
            if retry_predicate is None
            else ConditionSet(retry.on, retry_predicate)
        )
        """When an outcome is retried: ``retry.on``, or the user's predicate."""
        self.retry_predicate = retry_predicate
        self.balancer: Balancer = balancer_for(policy.load_balancer, endpoints, rng)
        # one lock for the policies' state: none of them calls another while holding it, and
        # a lock is 88 bytes (``self.lock`` stays apart: the outlier detector's is taken under it)
        guard = threading.Lock()
        cb = policy.circuit_breaker
        breaker = (
            CircuitBreaker(cb, listeners=breaker_listeners, lock=guard) if cb is not None else None
        )
        self.breaker = breaker
        failure_on = cb.failure_on if cb is not None else DEFAULT_FAILURE_ON
        self.failure_on = condition_set(failure_on)
        """What counts as a failure for the breaker and the outlier detector."""
        benign, fast = _answer_sets(failure_on, retry.on)
        self.benign_statuses = benign
        """HTTP statuses no failure or retry condition matches and that do not signal overload
        to the throttle (shared by every policy with the same conditions)."""
        self.fast_answers = fast if retry_predicate is None else _NO_FAST_ANSWERS
        """Statuses of answers that take the calls' fast path (None: an answer without one);
        nothing does when a user predicate has to see every outcome."""
        self.budget: Budget | None = (
            budget_for(retry.budget, guard) if retry.budget is not None else None
        )
        """Replaced by a shared one when the budget's scope is the service (``shared``)."""
        stop = retry.stop_above
        self.retry_stop = RetryStop(stop, guard) if stop is not None else None
        throttle = policy.adaptive_throttle
        self.throttle = AdaptiveThrottle(throttle, guard) if throttle is not None else None
        outlier = policy.outlier_detection
        self.outlier = OutlierDetector(outlier, guard) if outlier is not None else None
        limit = policy.concurrency_limit
        self.bulkhead = Bulkhead(limit, guard) if limit is not None else None
        self.hedge: HedgeConfig | None = policy.hedge
        """Set: calls are hedged (``start_hedged``; the drivers branch on it once a call)."""
        delay = policy.hedge.delay if policy.hedge else 0.0
        self.hedge_latency = (
            RecentPercentile(percentile_quantile(delay)) if isinstance(delay, str) else None
        )
        """``hedge.delay: pNN``: the percentile of recent attempt latencies hedges wait for."""
        self.non_fatal = condition_set(policy.hedge.non_fatal if policy.hedge else ())
        """The outcomes after which a hedged call goes on."""
        self.lock = threading.Lock()
        """Serialises endpoint-set and availability updates; picks do not take it."""
        self.plain_finish = (
            self.outlier is None and type(self.balancer).on_finish is Balancer.on_finish
        )
        """A successful attempt's feedback is only the balancer's active count (fast path)."""
        self._unhealthy = NO_IDS
        self._ejected = NO_IDS
        self.call_log: CallLog | None = None
        """Finished calls are appended here when metrics are on (see ``observe.calls``)."""
        self.ejection_listeners: tuple[EjectionListener, ...] = ()
        """Called as ``listener(ejected, returned, now)`` when the outlier detector's set of
        ejected endpoints changes (seen by the next pick), outside the lock; see
        :meth:`add_ejection_listener`."""

    def add_ejection_listener(self, listener: EjectionListener) -> None:
        with self.lock:  # one replacement at a time; a caller reads the tuple it finds
            self.ejection_listeners = (*self.ejection_listeners, listener)

    # -- discovery --------------------------------------------------------------------------

    def set_endpoints(self, endpoints: Sequence[Endpoint]) -> None:
        """A discovery update. Surviving endpoints keep their state (active counts, latency,
        outlier history); departed ones are forgotten."""
        ids = {e.id for e in endpoints}
        with self.lock:
            gone = [h.id for h in self.balancer.hosts if h.id not in ids]
            self.balancer.set_endpoints(endpoints)
            self._unhealthy = self._unhealthy & ids
            if self.outlier is not None:
                for endpoint_id in gone:
                    self.outlier.forget(endpoint_id)
            self._publish_unavailable()

    def set_healthy(self, endpoint_id: str, healthy: bool) -> None:
        """A health-check result: unhealthy endpoints are skipped while enough others are up."""
        with self.lock:
            if healthy:
                self._unhealthy = self._unhealthy - {endpoint_id}
            else:
                self._unhealthy = self._unhealthy | {endpoint_id}
            self._publish_unavailable()

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(h.endpoint for h in self.balancer.hosts)

    # -- calls ------------------------------------------------------------------------------

    def start(self, now: float, key: str | None = None, deadline: float | None = None) -> Call:
        """Begin one logical request; ``key`` feeds the hash balancers. The call ends by
        ``policy.timeout`` from ``now``, or by ``deadline`` (the request being served, see
        ``meshspec_runtime.deadline``) when that is sooner."""
        call = Call()  # no __init__: Call's fields are set here, one frame less per call
        call._up = self
        end = now + self.timeout
        call._deadline = end if deadline is None or deadline > end else deadline
        call._key = key
        call._host = None
        call._last = None
        call._delay = 0.0
        call._started = now
        call._outcomes = None
        call.attempts = 0
        call.retries_denied = 0
        bulkhead = self.bulkhead
        if bulkhead is None:
            call._permit = False
        else:  # Bulkhead.try_acquire, inlined: a free permit is one atomic pop
            free = bulkhead.free
            try:
                admitted = free.pop() if free else bulkhead.acquire_slow()
            except IndexError:  # taken between the test and the pop (without a GIL only)
                admitted = bulkhead.acquire_slow()
            if not admitted:
                call._permit = False
                call._final = Fail(FailReason.CONCURRENCY_LIMIT, None)
                call._state = FINISHED
                if self.call_log is not None:
                    call._ended = now
                    self.call_log.pending.append(call)
                return call
            call._permit = True
        call._state = READY
        budget = self.budget
        if budget is not None:
            edge, deposits = budget.newest  # budget.deposit() (on_request's fast path), inlined
            if now < edge:
                next(deposits)
            else:
                budget.on_request(now)
        retry_stop = self.retry_stop
        if retry_stop is not None:
            retry_stop.on_request(now)
        return call

    def start_hedged(
        self, now: float, key: str | None = None, deadline: float | None = None
    ) -> HedgedCall:
        """Begin one hedged logical request (the edge's policy has ``hedge``), as ``start``
        begins a plain one. A plain edge never comes here: ``start`` and its callers keep
        their own path, and streams (one attempt each) keep using ``start``."""
        assert self.hedge is not None, "start_hedged() on an edge without a hedge policy"
        return HedgedCall(self, now, key, deadline)

    # -- used by Call -----------------------------------------------------------------------

    def refresh_ejections(self, now: float) -> None:
        """Tell the balancer about ejections that began or ended since the last pick."""
        assert self.outlier is not None
        ejected = self.outlier.ejected(now)
        if ejected is not self._ejected:  # the detector returns the same set until it changes
            with self.lock:
                # a racing thread may publish an older set after this one: the next pick
                # sees the difference and publishes again
                before = self._ejected
                if before is ejected:  # another thread published it first
                    return
                self._ejected = ejected
                self._publish_unavailable()
            if self.ejection_listeners:
                for listener in self.ejection_listeners:
                    listener(ejected - before, before - ejected, now)

    def finish_attempt(self, now: float, host: Host, latency: float, failed: bool) -> None:
        """Feedback from an attempt's outcome to the balancer and the outlier detector."""
        self.balancer.on_finish(host, latency, now)
        outlier = self.outlier
        if outlier is not None:
            if failed:
                outlier.on_failure(now, host.id, len(self.balancer.hosts))
            else:
                outlier.on_success(now, host.id)

    def cancel_attempt(self, host: Host) -> None:
        self.balancer.on_cancel(host)

    def _publish_unavailable(self) -> None:
        """Called with the lock held."""
        self.balancer.set_unavailable(self._unhealthy | self._ejected)


def policies_for(
    service: ServicePolicies,
    *,
    rng: random.Random,
    retry_predicate: OutcomePredicate | None = None,
) -> dict[str, UpstreamPolicies]:
    """One ``UpstreamPolicies`` per upstream of ``service`` (a bundle's ``policy.json`` entry),
    all drawing from ``rng``; keyed by upstream name."""
    return {
        name: UpstreamPolicies(
            upstream.policy, upstream.endpoints, rng=rng, retry_predicate=retry_predicate
        )
        for name, upstream in service.upstreams.items()
    }
