"""Retries that stop above a failure rate (Marc Brooker, "Fixing retries with token buckets
and circuit breakers", 2022: a circuit breaker that breaks only retries).

The failure rate is the share of the requests of the last ``window`` seconds whose first try
failed with an outcome ``retry.on`` matches. Requests are counted when a call starts, first-try
failures on the retry path, so a successful call costs nothing here beyond one deposit. While
fewer than ``minimum_requests`` requests are in the window, retries go.
"""

from __future__ import annotations

import math
import threading

from meshspec_runtime.policy.config import RetryStopConfig
from meshspec_runtime.policy.limits import MAX_RETRY_STOP_SLICES
from meshspec_runtime.policy.windows import SlidingCounters

_REQUESTS = 0
_FAILURES = 1


class RetryStop:
    __slots__ = ("_counters", "_lock", "_minimum", "_threshold", "stopped_total")

    def __init__(self, config: RetryStopConfig, lock: threading.Lock | None = None) -> None:
        """``lock`` guards the state (default: a lock of its own); an ``UpstreamPolicies``
        gives all its policies one, as none of them calls another while holding it."""
        # one slice a second, fewer for long windows (each slice is two counters)
        slices = min(MAX_RETRY_STOP_SLICES, max(1, math.ceil(config.window)))
        self._counters = SlidingCounters(config.window, slices, 2)
        self._threshold = config.failure_rate
        self._minimum = config.minimum_requests
        self._lock = threading.Lock() if lock is None else lock
        self.stopped_total = 0
        """Retries not made because the failure rate was above the threshold."""

    def on_request(self, now: float) -> None:
        with self._lock:
            self._counters.add(now, _REQUESTS)

    def on_first_try_failure(self, now: float) -> None:
        with self._lock:
            self._counters.add(now, _FAILURES)

    def allows_retry(self, now: float) -> bool:
        """May a call retry now? (Counts a refusal in ``stopped_total``.)"""
        with self._lock:
            counters = self._counters
            counters.advance(now)
            requests, failures = counters.totals
            if requests >= self._minimum and failures > self._threshold * requests:
                self.stopped_total += 1
                return False
            return True
