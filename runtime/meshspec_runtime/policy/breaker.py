"""Circuit breaker: resilience4j's rate mode (count or time window, slow calls) and pybreaker's
consecutive-failures mode, as an explicit sans-I/O state machine.

The caller supplies ``now`` (monotonic seconds) and the outcome of each admitted call; the
breaker never reads a clock. One ``threading.Lock`` guards every change, so one breaker may be
shared by many threads; the healthy paths (admission while CLOSED, a success that changes
nothing) only read, without the lock. Listeners run outside the lock, in transition order.

Outcome attribution: an outcome belongs to the state the breaker is in when it arrives. A call
that outlives a whole open period (its duration exceeds ``open_for``) could therefore be taken
for a half-open probe. Callers that need exact attribution use :meth:`CircuitBreaker.admit`,
which returns a ticket, and pass it back to ``on_success``/``on_failure``/``on_cancel``:
outcomes carrying a ticket from an earlier state are ignored.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Iterable
from enum import StrEnum

from meshspec_runtime.policy.config import CircuitBreakerConfig, CountWindow
from meshspec_runtime.policy.outcome import condition_set
from meshspec_runtime.policy.windows import SlidingCounters


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


BreakerListener = Callable[[BreakerState, BreakerState, float], None]
"""Called as ``listener(old, new, now)`` on every transition."""

CLOSED = BreakerState.CLOSED
OPEN = BreakerState.OPEN
HALF_OPEN = BreakerState.HALF_OPEN

REJECTED = 0
"""The ticket :meth:`CircuitBreaker.admit` returns for a call it does not admit."""


class _CountWindow:
    """The outcomes of the last ``size`` calls (resilience4j's count-based sliding window)."""

    __slots__ = ("_codes", "_next", "calls", "failures", "size", "slow")

    def __init__(self, size: int) -> None:
        self.size = size
        self._codes = bytearray(size)  # bit 1: failed, bit 2: slow (a byte each, not a pointer)
        self._next = 0
        self.calls = 0
        self.failures = 0
        self.slow = 0

    def record(self, now: float, failed: bool, slow: bool) -> tuple[int, int, int]:
        i = self._next
        if self.calls == self.size:
            old = self._codes[i]
            self.failures -= old & 1
            self.slow -= old >> 1
        else:
            self.calls += 1
        self._codes[i] = failed | (slow << 1)
        self.failures += failed
        self.slow += slow
        self._next = i + 1 if i + 1 < self.size else 0
        return self.calls, self.failures, self.slow


class _TimeWindow:
    """Calls of the last ``size`` seconds, one bucket a second (resilience4j's time window)."""

    __slots__ = ("_counters",)

    def __init__(self, size: int) -> None:
        self._counters = SlidingCounters(float(size), size, 3)  # calls, failures, slow

    def record(self, now: float, failed: bool, slow: bool) -> tuple[int, int, int]:
        counters = self._counters
        base = 3 * (counters.slot if now < counters.edge else counters.advance(now))
        buckets = counters.buckets
        totals = counters.totals
        buckets[base] += 1
        totals[0] += 1
        if failed:
            buckets[base + 1] += 1
            totals[1] += 1
        if slow:
            buckets[base + 2] += 1
            totals[2] += 1
        return totals[0], totals[1], totals[2]


class CircuitBreaker:
    """CLOSED -> OPEN -> HALF_OPEN -> CLOSED | OPEN. See docs/policies.md for the rules."""

    __slots__ = (
        "_consecutive",
        "_dispatch_lock",
        "_epoch",
        "_events",
        "_failure_rate",
        "_failures_in_row",
        "_full",
        "_half_open_at",
        "_listeners",
        "_lock",
        "_minimum_calls",
        "_open_time",
        "_probe_failures",
        "_probe_slow",
        "_probes_admitted",
        "_probes_in_flight",
        "_probes_recorded",
        "_quiet",
        "_rejected",
        "_slow_over",
        "_slow_rate",
        "_state",
        "_window",
        "config",
        "is_failure",
    )

    def __init__(
        self,
        config: CircuitBreakerConfig,
        *,
        listeners: Iterable[BreakerListener] = (),
        lock: threading.Lock | None = None,
    ) -> None:
        """``lock`` guards the state (default: a lock of its own); an ``UpstreamPolicies``
        gives all its policies one, as none of them calls another while holding it."""
        self.config = config
        self.is_failure = condition_set(tuple(config.failure_on))
        """Classifies an :class:`Outcome` as a failure for this breaker."""
        self._lock = threading.Lock() if lock is None else lock
        self._dispatch_lock: threading.RLock | None = None
        """Serialises delivery to the listeners; made with ``_events``."""
        self._events: deque[tuple[BreakerState, BreakerState, float]] | None = None
        """Transitions waiting for the listeners; made at the first one (760 bytes)."""
        self._listeners: tuple[BreakerListener, ...] = tuple(listeners)
        self._consecutive = config.mode == "consecutive"
        window = config.window
        self._window: _CountWindow | _TimeWindow | None = None
        """The rate mode's outcomes since the last close; made by the first one recorded."""
        self._failure_rate = config.failure_rate
        slow = config.slow_calls
        self._slow_over = slow.over if slow is not None else math.inf
        self._slow_rate = slow.rate if slow is not None else math.inf
        self._state = CLOSED
        self._epoch = 1
        self._failures_in_row = 0
        self._open_time = config.open_for
        self._half_open_at = math.inf
        self._probes_admitted = 0
        self._probes_in_flight = 0
        self._probes_recorded = 0
        self._probe_failures = 0
        self._probe_slow = 0
        self._rejected = 0
        # "A success that is not slow would change nothing": consecutive mode with no failure
        # in a row, or a full count window holding only fast successes. Lets on_success skip
        # the lock on the healthy path. Only ever True in CLOSED.
        self._quiet = self._consecutive
        # the count window's size; the time window is never "full" (its calls expire)
        self._full = window.size if isinstance(window, CountWindow) else -1
        self._minimum_calls = config.minimum_calls

    # -- queries ----------------------------------------------------------------------------

    def state(self, now: float) -> BreakerState:
        """The state at ``now``; an OPEN breaker turns HALF_OPEN once its open time elapsed."""
        with self._lock:
            if self._state is OPEN and now >= self._half_open_at:
                self._to_half_open(now)
            state = self._state
        if self._events:
            self._dispatch()
        return state

    @property
    def current_state(self) -> BreakerState:
        """The state as last moved, without the OPEN -> HALF_OPEN move that :meth:`state`
        makes when the open time has elapsed: for readers (a metrics scrape) that must not
        change the breaker."""
        return self._state

    @property
    def rejected_total(self) -> int:
        """Calls rejected so far."""
        return self._rejected

    @property
    def probes_admitted(self) -> int:
        """Probe slots taken in the current HALF_OPEN period (0 in other states)."""
        return self._probes_admitted if self._state is HALF_OPEN else 0

    @property
    def open_time(self) -> float:
        """How long the current (or next) open period lasts, in seconds."""
        return self._open_time

    def add_listener(self, listener: BreakerListener) -> None:
        """Also told of the transitions not delivered yet."""
        with self._lock:  # one replacement at a time; a dispatch reads the tuple it finds
            self._listeners = (*self._listeners, listener)

    # -- admission --------------------------------------------------------------------------

    def try_acquire(self, now: float) -> bool:
        """Admit a call? In HALF_OPEN this takes one of the ``half_open_calls`` probe slots."""
        # Hot path: a CLOSED breaker admits without touching any state, so no lock. A thread
        # racing a trip may still see CLOSED; that call counts as admitted just before it.
        if self._state is CLOSED:
            return True
        return self._admit_slow(now) != REJECTED

    def admit(self, now: float) -> int:
        """Like :meth:`try_acquire`, but return a ticket: ``REJECTED`` (0) or a positive int
        to pass back with the call's outcome, so that it is attributed exactly."""
        # Read the epoch before the state: if a transition slips in between, the ticket is
        # from the older state, which makes its outcome ignored, never misattributed.
        epoch = self._epoch
        if self._state is CLOSED:
            return epoch
        return self._admit_slow(now)

    def _admit_slow(self, now: float) -> int:
        lock = self._lock
        lock.acquire()
        try:
            state = self._state
            if state is CLOSED:
                return self._epoch
            if state is OPEN:
                if now < self._half_open_at:
                    self._rejected += 1  # an outage's hot path: rejecting
                    return REJECTED
                self._to_half_open(now)
            if self._probes_admitted < self.config.half_open_calls:
                self._probes_admitted += 1
                self._probes_in_flight += 1
                ticket = self._epoch
            else:
                self._rejected += 1
                ticket = REJECTED
        finally:
            lock.release()
        if self._events:
            self._dispatch()
        return ticket

    # -- outcomes ---------------------------------------------------------------------------

    def on_success(self, now: float, duration: float, ticket: int | None = None) -> None:
        """An admitted call succeeded after ``duration`` seconds; releases its probe slot."""
        slow = duration > self._slow_over
        if not slow and self._quiet:
            return  # a fast success would change nothing: the healthy path takes no lock
        self._record(now, False, slow, ticket)

    def on_failure(self, now: float, duration: float, ticket: int | None = None) -> None:
        """An admitted call failed after ``duration`` seconds; releases its probe slot."""
        self._record(now, True, duration > self._slow_over, ticket)

    def on_cancel(self, now: float, ticket: int | None = None) -> None:
        """An admitted call ended without an outcome: nothing is recorded, and in HALF_OPEN
        its probe slot is given back for another probe."""
        with self._lock:
            if ticket is not None and ticket != self._epoch:
                return
            if self._state is HALF_OPEN and self._probes_in_flight > 0:
                self._probes_in_flight -= 1
                self._probes_admitted -= 1

    def _record(self, now: float, failed: bool, slow: bool, ticket: int | None) -> None:
        lock = self._lock
        lock.acquire()
        try:
            if ticket is not None and ticket != self._epoch:
                return  # admitted under an earlier state: not evidence about this one
            # Cleared before any change, set again only once the state is consistent: a
            # lock-free reader that sees it set may treat its fast success as a no-op.
            self._quiet = False
            state = self._state
            if state is CLOSED:
                if self._consecutive:
                    if failed:
                        self._failures_in_row += 1
                        if self._failures_in_row >= self.config.consecutive_failures:
                            self._to_open(now, after_probe=False)
                    else:
                        self._failures_in_row = 0
                        self._quiet = True
                else:
                    window = self._window
                    if window is None:
                        window = self._window = self._new_window()
                    calls, failures, slow_calls = window.record(now, failed, slow)
                    if calls >= self._minimum_calls and (
                        failures / calls >= self._failure_rate
                        or slow_calls / calls >= self._slow_rate
                    ):
                        self._to_open(now, after_probe=False)
                    elif calls == self._full and not failures and not slow_calls:
                        # a full count window of fast successes: another one changes nothing
                        self._quiet = True
            elif state is HALF_OPEN and self._probes_in_flight > 0:
                self._probes_in_flight -= 1
                self._probes_recorded += 1
                self._probe_failures += failed
                self._probe_slow += slow
                self._judge_probes(now)
            # OPEN: a call admitted before the trip; the verdict is already in
        finally:
            lock.release()
        if self._events:
            self._dispatch()

    def _judge_probes(self, now: float) -> None:
        """Decide HALF_OPEN as soon as the verdict over all probes is certain."""
        n = self.config.half_open_calls
        failures = self._probe_failures
        if self._consecutive:
            # pybreaker: any failed trial reopens; enough successful trials close
            if failures:
                self._to_open(now, after_probe=True)
            elif self._probes_recorded >= n:
                self._to_closed(now)
            return
        slow = self._probe_slow
        # resilience4j evaluates the rates over all n probes once they completed. The final
        # counts lie between the current ones and the current ones plus the pending probes,
        # so the verdict is often known earlier: reopen (or close) as soon as it is.
        if failures / n >= self._failure_rate or slow / n >= self._slow_rate:
            self._to_open(now, after_probe=True)
            return
        pending = n - self._probes_recorded
        if (failures + pending) / n < self._failure_rate and (slow + pending) / n < self._slow_rate:
            self._to_closed(now)

    # -- transitions (called with the lock held) --------------------------------------------

    def _new_window(self) -> _CountWindow | _TimeWindow:
        window = self.config.window
        if isinstance(window, CountWindow):
            return _CountWindow(window.size)
        return _TimeWindow(window.size)

    def _move(self, new: BreakerState, now: float) -> None:
        events = self._events
        if events is None:
            self._dispatch_lock = threading.RLock()  # before the queue: _dispatch needs it
            events = self._events = deque()
        events.append((self._state, new, now))
        self._state = new
        self._epoch += 1

    def _to_open(self, now: float, *, after_probe: bool) -> None:
        config = self.config
        if after_probe and config.open_for_max is not None:
            self._open_time = min(config.open_for_max, self._open_time * config.open_for_multiplier)
        self._half_open_at = now + self._open_time
        self._move(OPEN, now)

    def _to_half_open(self, now: float) -> None:
        self._probes_admitted = self._probes_in_flight = self._probes_recorded = 0
        self._probe_failures = self._probe_slow = 0
        self._move(HALF_OPEN, now)

    def _to_closed(self, now: float) -> None:
        self._window = None  # a new one comes with the next outcome
        self._quiet = self._consecutive
        self._failures_in_row = 0
        self._open_time = self.config.open_for
        self._half_open_at = math.inf
        self._move(CLOSED, now)

    def _dispatch(self) -> None:
        # Events are queued under the state lock, so the queue holds them in transition
        # order; draining under one dispatch lock delivers them in that order.
        lock = self._dispatch_lock
        assert lock is not None  # made with the queue, which is not empty
        with lock:
            events = self._events
            while events:  # None before the first transition
                try:
                    old, new, at = events.popleft()
                except IndexError:
                    return
                for listener in self._listeners:
                    listener(old, new, at)
