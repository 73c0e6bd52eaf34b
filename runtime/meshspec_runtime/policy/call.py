"""One logical request to an upstream, as a sans-I/O state machine (in the style of h11).

The driver asks :meth:`Call.next` what to do and reports what happened with
:meth:`Call.record`; the call never sleeps, reads a clock or touches a socket. Threads, asyncio
and the simulator's SimPy processes all drive this same code::

    call = upstream.start(now)
    while True:
        step = call.next(now)
        if isinstance(step, Attempt):  # perform it, then: call.record(now, outcome)
        elif isinstance(step, Wait):   # sleep step.delay
        else:                          # Done or Fail: the call is over
            break

Order of checks
---------------
``UpstreamPolicies.start(now)``:

1. bulkhead: take a concurrency permit, held until the call ends -> ``CONCURRENCY_LIMIT``;
2. retry budget: deposit for this logical request (only calls that got a permit).

``next(now)`` when an attempt is due (the first one, or a retry after its wait):

1. a retry's backoff not yet returned -> ``Wait(delay)`` (the driver sleeps it, then asks again);
2. overall deadline (``policy.timeout`` from start): no time left -> ``DEADLINE_EXCEEDED``;
3. circuit breaker admission (one breaker per upstream, every attempt) -> ``BREAKER_OPEN``;
4. adaptive throttle (counts the attempt as a request) -> ``THROTTLED``, giving back the
   breaker admission;
5. balancer pick, skipping unhealthy and ejected endpoints (unless in panic mode) and, on a
   retry, the endpoint that just failed when another is available -> ``NO_ENDPOINT``, giving
   back the breaker admission;
6. ``Attempt(endpoint, timeout=min(per_try_timeout, time left), number)``.

``record(now, outcome)``:

1. feedback: balancer (active count, latency), outlier detector and breaker (failure per the
   breaker's ``failure_on``, default connect-failure/timeout/reset/5xx), throttle (an answer
   that is not an overload signal - 429, 503, grpc RESOURCE_EXHAUSTED/UNAVAILABLE - counts
   as accepted);
2. not matched by ``retry.on`` (nor the user's predicate): an answer is ``Done(outcome)``, a
   failed attempt (connect-failure, timeout, reset, error) is ``Fail(NOT_RETRYABLE)``;
3. retryable, but ``retry.attempts`` reached -> ``ATTEMPTS_EXHAUSTED``;
4. backoff delay for this retry; the retry could not start before the deadline ->
   ``DEADLINE_EXCEEDED``;
5. ``retry.stop_above``: the share of recent requests whose first try failed is above its
   threshold -> ``RETRIES_STOPPED`` (first tries always go; Brooker's retry breaker);
6. retry budget withdrawal refused -> ``BUDGET_EXHAUSTED`` (``retries_denied`` = 1);
7. otherwise the next ``next()`` returns ``Wait(delay)`` (when delay > 0), then the attempt.

``record_success(now, latency, status=None)`` is ``record`` of an answer, for drivers' common
case: when no condition can match it, the feedback is recorded without building an ``Outcome``.

Every terminal step releases the bulkhead permit. ``cancel(now)`` (the driver gave up: an
exception, a cancellation) releases whatever is held: the balancer's active count, the
breaker's admission (a half-open probe slot), the permit. It is idempotent.

Steps are built on the hot path without their dataclass ``__init__`` (see ``fastbuild``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.policy.breaker import BreakerState
from meshspec_runtime.policy.call_state_error import CallStateError
from meshspec_runtime.policy.fastbuild import builder
from meshspec_runtime.policy.outcome import Outcome, OutcomeKind

if TYPE_CHECKING:
    from meshspec_runtime.policy.balancer import Host
    from meshspec_runtime.policy.upstream import UpstreamPolicies


class FailReason(StrEnum):
    BREAKER_OPEN = "breaker_open"
    THROTTLED = "throttled"
    CONCURRENCY_LIMIT = "concurrency_limit"
    NO_ENDPOINT = "no_endpoint"
    NOT_RETRYABLE = "not_retryable"
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    BUDGET_EXHAUSTED = "budget_exhausted"
    RETRIES_STOPPED = "retries_stopped"
    DEADLINE_EXCEEDED = "deadline_exceeded"


REFUSALS: Final = frozenset(
    {
        FailReason.BREAKER_OPEN,
        FailReason.THROTTLED,
        FailReason.CONCURRENCY_LIMIT,
        FailReason.NO_ENDPOINT,
        FailReason.BUDGET_EXHAUSTED,
        FailReason.RETRIES_STOPPED,
        FailReason.DEADLINE_EXCEEDED,
    }
)
"""Reasons a call ended that are the policies' own decision (reported as ``CallRefused``)."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """Perform one try on ``endpoint`` within ``timeout`` seconds, then ``record`` it."""

    endpoint: Endpoint
    timeout: float
    number: int
    """1-based: 1 is the first try, 2 the first retry."""


@dataclass(frozen=True, slots=True)
class Wait:
    """Sleep ``delay`` seconds, then call ``next`` again."""

    delay: float


@dataclass(frozen=True, slots=True)
class Fail:
    """The call is over without a usable answer."""

    reason: FailReason
    last: Outcome | None
    """The outcome of the last attempt, if one was made."""


@dataclass(frozen=True, slots=True)
class Done:
    """The call is over: ``outcome`` is the upstream's answer (possibly a non-retryable 404)."""

    outcome: Outcome


Step = Attempt | Wait | Fail | Done


_attempt: Callable[[Endpoint, float, int], Attempt] = builder(
    Attempt, "endpoint", "timeout", "number"
)
_wait: Callable[[float], Wait] = builder(Wait, "delay")
_fail: Callable[[FailReason, Outcome | None], Fail] = builder(Fail, "reason", "last")
_done: Callable[[Outcome], Done] = builder(Done, "outcome")
_outcome: Callable[[OutcomeKind, float, int | None, str | None], Outcome] = builder(
    Outcome, "kind", "latency", "status", "grpc_status"
)


# call states
READY: Final = 0  # an attempt is due
_WAIT_DUE: Final = 1  # next() returns the Wait before the next attempt
_IN_ATTEMPT: Final = 3  # waiting for record()
FINISHED: Final = 4  # the final Done or Fail is decided
_CANCELLED: Final = 5

FOLD_AT: Final = 16384
"""Finished calls waiting in a call log before the thread that adds one folds them (metrics;
normally a background thread folds them every second, see ``observe.calls``)."""

_SUCCESS: Final = OutcomeKind.ANSWER
_CLOSED: Final = BreakerState.CLOSED
OVERLOAD_STATUSES: Final = frozenset({429, 503})
"""Answers that tell the adaptive throttle the upstream refused the request."""
_OVERLOAD_GRPC: Final = frozenset({"RESOURCE_EXHAUSTED", "UNAVAILABLE"})


class Call:
    """One logical request: attempts, waits between them, and the final verdict.

    Made by :meth:`UpstreamPolicies.start`, which sets its fields (a bare ``Call()`` is an
    empty shell: no ``__init__``, whose frame would cost more than the rest of ``start``). Not
    thread-safe: one driver drives one call (the shared state it touches, in
    ``UpstreamPolicies``, is).
    """

    __slots__ = (
        "_deadline",
        "_delay",
        "_ended",
        "_final",
        "_host",
        "_key",
        "_last",
        "_latency",
        "_outcomes",
        "_permit",
        "_started",
        "_state",
        "_status",
        "_ticket",
        "_up",
        "attempts",
        "retries_denied",
    )

    _up: UpstreamPolicies
    _deadline: float
    _key: str | None
    _host: Host | None
    """The host of the attempt in flight; after it, the one to avoid on a retry."""
    _last: Outcome | None
    _delay: float
    """The last backoff delay (decorrelated jitter builds on it)."""
    _permit: bool
    _state: int
    _final: Fail | Done | None
    """Set when finished; None for a success recorded by ``record_success`` (built lazily)."""
    _latency: float
    _status: int | None
    _ticket: int
    _started: float
    _ended: float
    """Set when the call finishes, if its upstream keeps a call log (metrics are on)."""
    _outcomes: list[Outcome] | None
    """Outcomes ``record`` saw (not the plain answers of ``record_success``), for metrics."""
    attempts: int
    """Attempts started so far."""
    retries_denied: int
    """Retries the budget refused (0 or 1)."""

    @property
    def finished(self) -> bool:
        """Done or Fail is decided (or the call was cancelled)."""
        return self._state >= FINISHED

    @property
    def deadline(self) -> float:
        return self._deadline

    # -- the driver's side ------------------------------------------------------------------

    def next(self, now: float) -> Step:
        """What to do now: after ``start``, after ``record``, or after a ``Wait`` elapsed."""
        state = self._state
        if state:
            if state == FINISHED:
                final = self._final
                if final is None:  # a success recorded by record_success()
                    outcome = _outcome(_SUCCESS, self._latency, self._status, None)
                    final = self._final = _done(outcome)
                return final
            if state == _WAIT_DUE:  # the driver sleeps, then asks again: the attempt comes next
                self._state = READY
                wait: Wait = _wait(self._delay)
                return wait
            raise CallStateError(
                "next() while an attempt is in flight: record() its outcome first"
                if state == _IN_ATTEMPT
                else "next() on a cancelled call"
            )
        up = self._up
        left = self._deadline - now
        if left <= 0.0:
            return self._finish(_fail(FailReason.DEADLINE_EXCEEDED, self._last), now)
        breaker = up.breaker
        ticket = 0
        if breaker is not None:
            # CircuitBreaker.admit, inlined: the epoch first, then the state (see there)
            ticket = breaker._epoch
            if breaker._state is not _CLOSED:
                ticket = breaker.admit(now)
                if ticket == 0:  # CircuitBreaker.REJECTED
                    return self._finish(_fail(FailReason.BREAKER_OPEN, self._last), now)
        # The admission (a half-open probe slot) is given back if anything below raises, e.g.
        # a hash key of the wrong type: cancel() would not know it was taken. (A try block
        # costs nothing until something raises.)
        try:
            throttle = up.throttle
            if throttle is not None:
                # AdaptiveThrottle.should_reject, inlined: its lock-free count, then the draw
                # only when rejection is possible
                edge, counts, requests, accepts = throttle.current
                if now < edge:
                    requests += counts[0]  # requests; counts[1]: accepts
                    counts[0] += 1
                    accepts += counts[1]
                else:
                    requests, accepts = throttle.count_moving(now, 0)
                if requests > throttle.k * accepts and throttle.rejects(requests, accepts, up.rng):
                    if breaker is not None:
                        breaker.on_cancel(now, ticket)
                    return self._finish(_fail(FailReason.THROTTLED, self._last), now)
            outlier = up.outlier
            # refresh_ejections only when it could change something (OutlierDetector.ejected's
            # lock-free test: the return time first, then the view published before it)
            if outlier is not None and (
                now >= outlier._next_return or outlier._view is not up._ejected
            ):
                up.refresh_ejections(now)
            host = up.balancer.pick(now, self._key, self._host)  # lock-free (balancer.base)
        except BaseException:
            if breaker is not None:
                breaker.on_cancel(now, ticket)
            raise
        if host is None:
            if breaker is not None:
                breaker.on_cancel(now, ticket)
            return self._finish(_fail(FailReason.NO_ENDPOINT, self._last), now)
        host.inflight.append(None)  # Balancer.on_start, inlined
        self._host = host
        self._ticket = ticket
        self._state = _IN_ATTEMPT
        number = self.attempts = self.attempts + 1
        per_try = up.per_try_timeout
        timeout = per_try if per_try < left else left
        # Attempts are immutable: the last one made for this host is reused when it matches
        # (a first attempt with a fixed timeout, the common case), sparing an allocation.
        attempt = host.attempt
        if attempt is None or attempt.timeout != timeout or attempt.number != number:
            attempt = host.attempt = _attempt(host.endpoint, timeout, number)
        return attempt

    def record(self, now: float, outcome: Outcome) -> None:
        """The outcome of the attempt ``next`` returned last."""
        if self._state != _IN_ATTEMPT:
            raise CallStateError("record() without an attempt in flight")
        up = self._up
        status = outcome.status
        if outcome.kind is _SUCCESS and outcome.grpc_status is None and status in up.fast_answers:
            self.record_success(now, outcome.latency, status)  # no condition can match it
            self._final = _done(outcome)
            return
        host = self._host
        assert host is not None
        outcomes = self._outcomes
        if outcomes is None:
            self._outcomes = [outcome]
        else:
            outcomes.append(outcome)
        latency = outcome.latency
        breaker = up.breaker
        throttle = up.throttle
        failed = up.failure_on.matches(outcome)
        up.finish_attempt(now, host, latency, failed)
        # The attempt is accounted for: if anything below raises (the user's retry predicate,
        # a breaker listener), cancel() must release only the permit, not the host's active
        # count or the breaker's slot a second time.
        self._state = READY
        if breaker is not None:
            if failed:
                breaker.on_failure(now, latency, self._ticket)
            else:
                breaker.on_success(now, latency, self._ticket)
        if (
            throttle is not None
            and outcome.kind is _SUCCESS
            and outcome.status not in OVERLOAD_STATUSES
            and outcome.grpc_status not in _OVERLOAD_GRPC
        ):
            throttle.on_accept(now)
        if not up.retry_on.matches(outcome):
            if outcome.kind is _SUCCESS:
                self._finish(_done(outcome), now)
            else:
                self._finish(_fail(FailReason.NOT_RETRYABLE, outcome), now)
            return
        self._retry(now, outcome)

    def record_success(self, now: float, latency: float, status: int | None = None) -> bool:
        """``record(now, Outcome(SUCCESS, latency, status))`` for drivers' common case - an
        answer - without building the outcome. True when the call is done (``next`` returns
        ``Done``); otherwise ``next`` says what comes next."""
        if self._state != _IN_ATTEMPT:
            raise CallStateError("record_success() without an attempt in flight")
        up = self._up
        if status not in up.fast_answers:
            self.record(now, _outcome(_SUCCESS, latency, status, None))
            return self._state == FINISHED and type(self._final) is Done
        host = self._host
        assert host is not None
        if up.plain_finish:
            host.inflight.pop()  # Balancer.on_finish, inlined
        else:  # UpstreamPolicies.finish_attempt of a success, inlined
            up.balancer.on_finish(host, latency, now)
            outlier = up.outlier
            if outlier is not None:
                runs = outlier._failures  # runs of failures in progress: usually none
                if runs and runs.get(host.id):
                    outlier.on_success(now, host.id)  # a run to reset
        breaker = up.breaker
        # CircuitBreaker.on_success's lock-free no-op, inlined: a fast success to a quiet breaker
        if breaker is not None and not (breaker._quiet and latency <= breaker._slow_over):
            breaker.on_success(now, latency, self._ticket)
        throttle = up.throttle
        if throttle is not None:
            current = throttle.current  # AdaptiveThrottle.on_accept, inlined
            if now < current[0]:
                current[1][1] += 1
            else:
                throttle.count_moving(now, 1)
        self._state = FINISHED
        self._final = None
        self._latency = latency
        self._status = status
        if self._permit:  # _release, inlined
            self._permit = False
            bulkhead = up.bulkhead
            assert bulkhead is not None
            bulkhead.free.append(True)  # Bulkhead.release, inlined
        log = up.call_log
        if log is not None:
            if self._outcomes is None and self.attempts == 1:
                # the common case, one plain answer: only its duration (a float, which the
                # garbage collector does not track) waits to be counted
                answers = log.answers
                answers.append(now - self._started)
                if len(answers) >= FOLD_AT:
                    log.fold_if_idle()
            else:
                self._ended = now
                log.pending.append(self)
        return True

    def cancel(self, now: float) -> None:
        """The driver gives up: release every permit and slot held. Idempotent."""
        state = self._state
        if state >= FINISHED:
            return
        self._state = _CANCELLED
        if state == _IN_ATTEMPT:
            host = self._host
            assert host is not None
            self._up.cancel_attempt(host)
            breaker = self._up.breaker
            if breaker is not None:
                breaker.on_cancel(now, self._ticket)
        self._release()

    # -- internals --------------------------------------------------------------------------

    def _retry(self, now: float, outcome: Outcome) -> None:
        """A retryable outcome: schedule a retry, or end the call saying why not."""
        self._last = outcome
        up = self._up
        retry_stop = up.retry_stop
        if retry_stop is not None and self.attempts == 1:
            retry_stop.on_first_try_failure(now)
        if self.attempts >= up.max_attempts:
            self._finish(_fail(FailReason.ATTEMPTS_EXHAUSTED, outcome), now)
            return
        delay = up.backoff.delay(self.attempts, self._delay, up.rng)
        if now + delay >= self._deadline:
            self._finish(_fail(FailReason.DEADLINE_EXCEEDED, outcome), now)
            return
        if retry_stop is not None and not retry_stop.allows_retry(now):
            self._finish(_fail(FailReason.RETRIES_STOPPED, outcome), now)
            return
        budget = up.budget
        if budget is not None and not budget.try_withdraw(now):
            self.retries_denied = 1
            self._finish(_fail(FailReason.BUDGET_EXHAUSTED, outcome), now)
            return
        self._delay = delay
        self._state = _WAIT_DUE if delay > 0.0 else READY

    def _finish(self, step: Fail | Done, now: float) -> Fail | Done:
        self._final = step
        self._state = FINISHED
        self._release()
        log = self._up.call_log
        if log is not None:
            self._ended = now
            log.pending.append(self)
            if len(log.pending) >= FOLD_AT:
                log.fold_if_idle()
        return step

    def _release(self) -> None:
        if self._permit:
            self._permit = False
            bulkhead = self._up.bulkhead
            assert bulkhead is not None
            bulkhead.release()
