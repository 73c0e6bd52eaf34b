"""A hedged request, as a sans-I/O state machine beside :class:`~.call.Call`.

An edge whose policy has ``hedge:`` starts its calls with ``UpstreamPolicies.start_hedged``.
Several attempts may be in flight at once, so the protocol names them (by ``Attempt.number``)::

    call = upstream.start_hedged(now)
    while True:
        step = call.next(now)
        if isinstance(step, Attempt):    # start it concurrently; later: call.record(now, number, o)
        elif isinstance(step, WaitAny):  # wait up to step.delay for an attempt in flight to end
        elif isinstance(step, Wait):     # nothing in flight: sleep step.delay (a retry's backoff)
        else:                            # Done or Fail: cancel the attempts in call.losers
            break

Rules ("The Tail at Scale", gRPC's hedgingPolicy, Envoy's hedge_policy):

- the first attempt goes as a plain call's does (deadline, breaker, throttle, balancer; a
  refusal ends the call);
- while an attempt has been outstanding for ``hedge.delay`` and fewer than
  ``hedge.max_attempts`` have started, a hedge starts on an endpoint not already in flight
  when there is one. A hedge withdraws from the retry budget exactly as a retry does, and goes
  through the breaker, the throttle and the balancer as any attempt; a refusal (counted in
  ``hedges_denied`` when the budget refused) means no more hedges: the attempts in flight are
  still awaited;
- an outcome matched by ``hedge.non_fatal`` does not end the call: the next hedge starts at
  once (gRPC does the same). Any other outcome ends it: an answer is ``Done`` (the first good
  answer wins), a failed attempt ``Fail(NOT_RETRYABLE)``; the attempts still in flight are
  released as ``cancel`` releases them, counted in ``hedges_cancelled`` and listed in
  ``losers`` for the driver to cancel (or discard);
- retries come only after every hedged attempt failed non-fatally and no hedge can start: the
  last outcome is then retried under the retry policy (``retry.on``, ``retry.attempts - 1``
  retries at most, backoff, deadline, ``stop_above``, budget), one attempt at a time, without
  hedging. The worst case is therefore ``hedge.max_attempts + retry.attempts - 1`` attempts.

Each attempt's feedback (balancer latency and active count, outlier detector, breaker, throttle)
is a plain attempt's. Not thread-safe: one driver drives one call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from meshspec_runtime.policy.balancer.base import Host  # at run time: a field's type (mypyc)
from meshspec_runtime.policy.breaker import BreakerState
from meshspec_runtime.policy.call import (
    _OVERLOAD_GRPC,
    FOLD_AT,
    OVERLOAD_STATUSES,
    Attempt,
    Done,
    Fail,
    FailReason,
    Wait,
)
from meshspec_runtime.policy.call_state_error import CallStateError
from meshspec_runtime.policy.outcome import Outcome, OutcomeKind

if TYPE_CHECKING:
    from meshspec_runtime.policy.upstream import UpstreamPolicies


@dataclass(frozen=True, slots=True)
class WaitAny:
    """Wait until an attempt in flight ends (then ``record`` it) or ``delay`` seconds pass
    (``math.inf``: until one ends), then call ``next`` again."""

    delay: float


HedgeStep = Attempt | WaitAny | Wait | Fail | Done

# states
_READY: Final = 0  # nothing in flight, an attempt is due (the first one, or a retry)
_RUNNING: Final = 1  # attempts in flight, or a hedge due
_WAIT_DUE: Final = 2  # next() returns the backoff Wait before a retry
_FINISHED: Final = 3
_CANCELLED: Final = 4

_ANSWER: Final = OutcomeKind.ANSWER
_TIMED: Final = frozenset({OutcomeKind.ANSWER, OutcomeKind.TIMEOUT})
"""Outcomes whose latency is the upstream's (what ``delay: pNN`` is a percentile of)."""
_CLOSED: Final = BreakerState.CLOSED


@dataclass(slots=True)
class _InFlight:
    host: Host
    ticket: int
    """The breaker's admission ticket of this attempt."""
    started: float


class HedgedCall:
    """One logical request with hedged attempts (see the module's rules)."""

    __slots__ = (
        "_deadline",
        "_delay",
        "_ended",
        "_final",
        "_hedge_at",
        "_hedging",
        "_inflight",
        "_key",
        "_last",
        "_outcomes",
        "_permit",
        "_retries",
        "_started",
        "_state",
        "_up",
        "attempts",
        "hedge_won",
        "hedges",
        "hedges_cancelled",
        "hedges_denied",
        "losers",
        "retries_denied",
    )

    def __init__(
        self, up: UpstreamPolicies, now: float, key: str | None, deadline: float | None
    ) -> None:
        self._up = up
        end = now + up.timeout
        self._deadline = end if deadline is None or deadline > end else deadline
        self._key = key
        self._started = now
        self._ended = now
        self._final: Fail | Done | None = None
        self._inflight: dict[int, _InFlight] = {}
        self._outcomes: list[Outcome] | None = None
        """Every recorded outcome (the call log counts attempts by them)."""
        self._last: Outcome | None = None
        self._delay = 0.0
        self._hedge_at = math.inf
        """When the next hedge is due."""
        self._hedging = True
        """Hedges may still start (until refused, or a retry began)."""
        self._retries = 0
        self.attempts = 0
        """Attempts started so far (hedges and retries included)."""
        self.hedges = 0
        """Attempts started by hedging (after the first)."""
        self.hedges_denied = 0
        """Hedges the retry budget refused (0 or 1: a refusal ends hedging)."""
        self.hedges_cancelled = 0
        """Attempts still in flight when the call ended, released unrecorded."""
        self.hedge_won = False
        """The call's answer came from a hedge, not from the first attempt."""
        self.retries_denied = 0
        self.losers: tuple[int, ...] = ()
        """Numbers of the attempts in flight when the call ended: the driver cancels them."""
        bulkhead = up.bulkhead
        self._permit = False
        if bulkhead is not None and not bulkhead.try_acquire():
            self._finish(Fail(FailReason.CONCURRENCY_LIMIT, None), now)
            return
        self._permit = bulkhead is not None
        self._state = _READY
        if up.budget is not None:
            up.budget.on_request(now)
        if up.retry_stop is not None:
            up.retry_stop.on_request(now)

    @property
    def finished(self) -> bool:
        return self._state >= _FINISHED

    @property
    def deadline(self) -> float:
        return self._deadline

    @property
    def in_flight(self) -> tuple[int, ...]:
        """Numbers of the attempts started and not yet recorded."""
        return tuple(self._inflight)

    # -- the driver's side ------------------------------------------------------------------

    def next(self, now: float) -> HedgeStep:
        """What to do now: after start, after ``record``, or after a wait elapsed."""
        state = self._state
        if state == _FINISHED:
            assert self._final is not None
            return self._final
        if state == _CANCELLED:
            raise CallStateError("next() on a cancelled call")
        if state == _WAIT_DUE:
            self._state = _READY
            return Wait(self._delay)
        if state == _READY:
            return self._first_or_retry(now)
        hedge = self._up.hedge
        assert hedge is not None
        if self._hedging and now >= self._hedge_at:
            if self.attempts >= hedge.max_attempts:
                self._hedging = False
            else:
                started = self._start_hedge(now)
                if started is not None:
                    return started
        if self._inflight:
            return WaitAny(self._hedge_at - now if self._hedging else math.inf)
        return self._after_hedging(now)

    def record(self, now: float, number: int, outcome: Outcome) -> None:
        """The outcome of attempt ``number`` (one in flight)."""
        flight = self._inflight.pop(number, None)
        if flight is None or self._state != _RUNNING:
            raise CallStateError(f"record() of attempt {number}, which is not in flight")
        up = self._up
        outcomes = self._outcomes
        if outcomes is None:
            self._outcomes = [outcome]
        else:
            outcomes.append(outcome)
        latency = outcome.latency
        tracker = up.hedge_latency
        if tracker is not None and outcome.kind in _TIMED:  # a refusal says nothing of it
            tracker.add(latency)
        failed = up.failure_on.matches(outcome)
        up.finish_attempt(now, flight.host, latency, failed)
        breaker = up.breaker
        if breaker is not None:
            if failed:
                breaker.on_failure(now, latency, flight.ticket)
            else:
                breaker.on_success(now, latency, flight.ticket)
        throttle = up.throttle
        if (
            throttle is not None
            and outcome.kind is _ANSWER
            and outcome.status not in OVERLOAD_STATUSES
            and outcome.grpc_status not in _OVERLOAD_GRPC
        ):
            throttle.on_accept(now)
        if not up.non_fatal.matches(outcome):
            if outcome.kind is _ANSWER:
                self.hedge_won = number > 1 and self._retries == 0
                self._finish(Done(outcome), now)
            else:
                self._finish(Fail(FailReason.NOT_RETRYABLE, outcome), now)
            return
        self._last = outcome
        if number == 1 and up.retry_stop is not None:
            up.retry_stop.on_first_try_failure(now)
        if self._hedging:
            self._hedge_at = now  # a non-fatal outcome: the next hedge goes at once

    def cancel(self, now: float) -> None:
        """The driver gives up: release every attempt in flight and the permit. Idempotent."""
        if self._state >= _FINISHED:
            return
        self._state = _CANCELLED
        self._release_inflight(now)
        self._release()

    # -- internals --------------------------------------------------------------------------

    def _first_or_retry(self, now: float) -> HedgeStep:
        left = self._deadline - now
        if left <= 0.0:
            return self._finish(Fail(FailReason.DEADLINE_EXCEEDED, self._last), now)
        admitted = self._admit(now)
        if isinstance(admitted, FailReason):
            return self._finish(Fail(admitted, self._last), now)
        host, ticket = admitted
        self._state = _RUNNING
        if self._hedging:
            self._hedge_at = now + self._hedge_delay()
        return self._launch(host, ticket, left, now)

    def _start_hedge(self, now: float) -> Attempt | None:
        """A hedge, or None when it may not start (hedging ends then)."""
        left = self._deadline - now
        up = self._up
        if left <= 0.0:
            self._hedging = False
            return None
        admitted = self._admit(now)
        if isinstance(admitted, FailReason):
            self._hedging = False
            return None
        host, ticket = admitted
        hedge = up.hedge
        assert hedge is not None
        budget = up.budget
        if budget is not None and not budget.try_withdraw(now):
            if up.breaker is not None:
                up.breaker.on_cancel(now, ticket)
            self.hedges_denied = 1
            self._hedging = False
            return None
        self.hedges += 1
        if self.attempts + 1 >= hedge.max_attempts:
            self._hedging = False  # the last one: no wake-up for a hedge that cannot start
        else:
            self._hedge_at = now + self._hedge_delay()
        return self._launch(host, ticket, left, now)

    def _admit(self, now: float) -> tuple[Host, int] | FailReason:
        """Breaker admission, throttle and a balancer pick for one attempt (the host is not
        yet counted active); a refusal gives back what it took."""
        up = self._up
        breaker = up.breaker
        ticket = 0
        if breaker is not None:
            ticket = breaker.admit(now)
            if ticket == 0:  # CircuitBreaker.REJECTED
                return FailReason.BREAKER_OPEN
        try:
            throttle = up.throttle
            if throttle is not None and throttle.should_reject(now, up.rng):
                if breaker is not None:
                    breaker.on_cancel(now, ticket)
                return FailReason.THROTTLED
            if up.outlier is not None:
                up.refresh_ejections(now)
            host = self._pick(now)
        except BaseException:
            if breaker is not None:
                breaker.on_cancel(now, ticket)
            raise
        if host is None:
            if breaker is not None:
                breaker.on_cancel(now, ticket)
            return FailReason.NO_ENDPOINT
        return host, ticket

    def _pick(self, now: float) -> Host | None:
        """The balancer's pick, moved to an endpoint not in flight for this call when the
        pool has one (a hedge on the same slow endpoint would rarely help)."""
        up = self._up
        busy = [flight.host for flight in self._inflight.values()]
        host = up.balancer.pick(now, self._key, busy[-1] if busy else None)
        if host is None or host not in busy:
            return host
        free = [h for h in up.balancer.pool if h not in busy]
        return free[int(up.rng.random() * len(free))] if free else host

    def _hedge_delay(self) -> float:
        """``hedge.delay`` in seconds; a percentile's current value (``math.inf`` until the
        edge has enough latencies: no hedge by time)."""
        up = self._up
        tracker = up.hedge_latency
        if tracker is not None:
            value = tracker.value
            return value if value is not None else math.inf
        hedge = up.hedge
        assert hedge is not None and not isinstance(hedge.delay, str)
        return hedge.delay

    def _launch(self, host: Host, ticket: int, left: float, now: float) -> Attempt:
        up = self._up
        up.balancer.on_start(host)
        number = self.attempts = self.attempts + 1
        self._inflight[number] = _InFlight(host, ticket, now)
        per_try = up.per_try_timeout
        return Attempt(host.endpoint, per_try if per_try < left else left, number)

    def _after_hedging(self, now: float) -> HedgeStep:
        """Nothing in flight, no hedge can start: retry the last outcome, or end the call."""
        outcome = self._last
        assert outcome is not None  # every attempt in flight ended non-fatally
        up = self._up
        self._hedging = False
        if not up.retry_on.matches(outcome):
            if outcome.kind is _ANSWER:
                return self._finish(Done(outcome), now)
            return self._finish(Fail(FailReason.NOT_RETRYABLE, outcome), now)
        if self._retries >= up.max_attempts - 1:
            return self._finish(Fail(FailReason.ATTEMPTS_EXHAUSTED, outcome), now)
        delay = up.backoff.delay(self._retries + 1, self._delay, up.rng)
        if now + delay >= self._deadline:
            return self._finish(Fail(FailReason.DEADLINE_EXCEEDED, outcome), now)
        retry_stop = up.retry_stop
        if retry_stop is not None and not retry_stop.allows_retry(now):
            return self._finish(Fail(FailReason.RETRIES_STOPPED, outcome), now)
        budget = up.budget
        if budget is not None and not budget.try_withdraw(now):
            self.retries_denied = 1
            return self._finish(Fail(FailReason.BUDGET_EXHAUSTED, outcome), now)
        self._retries += 1
        self._delay = delay
        self._state = _WAIT_DUE if delay > 0.0 else _READY
        return self.next(now)

    def _finish(self, step: Fail | Done, now: float) -> Fail | Done:
        self._final = step
        self._state = _FINISHED
        if self._inflight:
            self.losers = tuple(self._inflight)
            self.hedges_cancelled = len(self._inflight)
            self._release_inflight(now)
        self._release()
        self._ended = now
        log = self._up.call_log
        if log is not None:
            log.pending.append(self)
            if len(log.pending) >= FOLD_AT:
                log.fold_if_idle()
        return step

    def _release_inflight(self, now: float) -> None:
        up = self._up
        breaker = up.breaker
        tracker = up.hedge_latency
        for flight in self._inflight.values():
            if tracker is not None:  # how long it had been outstanding: a lower bound
                tracker.add(now - flight.started)
            up.cancel_attempt(flight.host)
            if breaker is not None:
                breaker.on_cancel(now, flight.ticket)
        self._inflight.clear()

    def _release(self) -> None:
        if self._permit:
            self._permit = False
            bulkhead = self._up.bulkhead
            assert bulkhead is not None
            bulkhead.release()
