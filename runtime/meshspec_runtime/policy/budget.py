"""Retry budget with Finagle's ``RetryBudget`` semantics (as used by Linkerd).

Model, exactly: time is cut into 10 slices of ``window / 10`` seconds (Finagle's windowed
token bucket also uses 10). The budget's window at ``now`` is the slice holding ``now`` and
the 9 before it. Within it::

    balance = min_per_second * window + ratio * requests - retries

where ``requests`` and ``retries`` count ``on_request`` deposits and granted withdrawals in
the window. A retry is granted when ``balance >= 1``, so at the moment of every granted retry
``retries <= ratio * requests + min_per_second * window`` over the window. Deposits and
withdrawals both expire with their slice: the reserve is not spent for good, it is a rate of
``min_per_second`` retries a second. Counts are integers, so nothing drifts.
"""

from __future__ import annotations

import threading

from meshspec_runtime.policy.config import RetryBudgetConfig
from meshspec_runtime.policy.windows import SlidingCounters

SLICES = 10

_REQUESTS = 0
_RETRIES = 1


class RetryBudget:
    __slots__ = ("_counters", "_denied", "_lock", "_ratio", "_reserve", "config")

    def __init__(self, config: RetryBudgetConfig) -> None:
        self.config = config
        self._ratio = config.ratio
        self._reserve = config.min_per_second * config.window
        self._counters = SlidingCounters(config.window, SLICES, 2)
        self._lock = threading.Lock()
        self._denied = 0

    def on_request(self, now: float) -> None:
        """A logical request (not a retry) was made: deposit ``ratio`` of a token."""
        counters = self._counters
        lock = self._lock
        lock.acquire()
        try:
            # SlidingCounters.bump, inlined: this runs once per logical request
            slot = counters.slot if now < counters.edge else counters.advance(now)
            counters.buckets[slot * 2 + _REQUESTS] += 1
            counters.totals[_REQUESTS] += 1
        finally:
            lock.release()

    def try_withdraw(self, now: float) -> bool:
        """Spend one token for a retry; ``False`` (and nothing spent) when the budget is dry."""
        counters = self._counters
        lock = self._lock
        lock.acquire()
        try:
            slot = counters.slot if now < counters.edge else counters.advance(now)
            totals = counters.totals
            if self._reserve + self._ratio * totals[_REQUESTS] - totals[_RETRIES] >= 1:
                counters.buckets[slot * 2 + _RETRIES] += 1
                totals[_RETRIES] += 1
                return True
            self._denied += 1
            return False
        finally:
            lock.release()

    def balance(self, now: float) -> float:
        """Tokens available at ``now`` (a retry needs one)."""
        with self._lock:
            self._counters.advance(now)
            requests, retries = self._counters.totals
            return self._reserve + self._ratio * requests - retries

    def window_counts(self, now: float) -> tuple[int, int]:
        """``(requests, retries)`` counted in the window at ``now``."""
        with self._lock:
            self._counters.advance(now)
            requests, retries = self._counters.totals
            return requests, retries

    @property
    def denied_total(self) -> int:
        """Retries refused so far."""
        return self._denied
