"""Client-side adaptive throttling, from the Google SRE book ("Handling Overload").

The client counts, over the last ``window`` seconds, the requests its application attempted
(``requests``, locally rejected ones included) and those the backend accepted (``accepts``).
A new request is rejected locally with probability::

    max(0, (requests - k * accepts) / (requests + 1))

Counts live in one-second buckets (at most 600 buckets: longer windows get wider ones).
The probability is computed from the counts *before* the request is counted, so the very first
request of a window is never rejected.
"""

from __future__ import annotations

import math
import random
import threading

from meshspec_runtime.policy.config import AdaptiveThrottleConfig
from meshspec_runtime.policy.windows import SlidingCounters

MAX_BUCKETS = 600

_REQUESTS = 0
_ACCEPTS = 1


class AdaptiveThrottle:
    __slots__ = ("_counters", "_k", "_lock", "_rejected", "config")

    def __init__(self, config: AdaptiveThrottleConfig, lock: threading.Lock | None = None) -> None:
        """``lock`` guards the state (default: a lock of its own); an ``UpstreamPolicies``
        gives all its policies one, as none of them calls another while holding it."""
        self.config = config
        self._k = config.k
        slices = min(MAX_BUCKETS, max(1, math.ceil(config.window)))
        self._counters = SlidingCounters(config.window, slices, 2)
        self._lock = threading.Lock() if lock is None else lock
        self._rejected = 0

    def reject_probability(self, now: float) -> float:
        with self._lock:
            self._counters.advance(now)
            requests, accepts = self._counters.totals
        return max(0.0, (requests - self._k * accepts) / (requests + 1))

    def should_reject(self, now: float, rng: random.Random) -> bool:
        """Count this request, and say whether to fail it locally without sending it."""
        counters = self._counters
        lock = self._lock
        lock.acquire()
        try:
            slot = counters.slot if now < counters.edge else counters.advance(now)
            totals = counters.totals
            requests = totals[_REQUESTS]
            p = (requests - self._k * totals[_ACCEPTS]) / (requests + 1)
            counters.buckets[slot * 2 + _REQUESTS] += 1
            totals[_REQUESTS] += 1
            # draw only when rejection is possible: keeps the healthy path cheap, and the
            # decisions still depend only on the seed and the inputs
            if p > 0 and rng.random() < p:
                self._rejected += 1
                return True
            return False
        finally:
            lock.release()

    def on_accept(self, now: float) -> None:
        """The backend accepted a request (answered it, without signalling overload)."""
        counters = self._counters
        lock = self._lock
        lock.acquire()
        try:
            slot = counters.slot if now < counters.edge else counters.advance(now)
            counters.buckets[slot * 2 + _ACCEPTS] += 1
            counters.totals[_ACCEPTS] += 1
        finally:
            lock.release()

    def window_counts(self, now: float) -> tuple[int, int]:
        """``(requests, accepts)`` in the window at ``now``."""
        with self._lock:
            self._counters.advance(now)
            requests, accepts = self._counters.totals
            return requests, accepts

    @property
    def rejected_total(self) -> int:
        return self._rejected
