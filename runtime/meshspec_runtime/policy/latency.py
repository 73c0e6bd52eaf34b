"""A latency percentile of an upstream's recent attempts, for hedging after it (``delay: p95``).

Finagle's backup requests and "The Tail at Scale" hedge once a request has been outstanding
longer than a high percentile of the recent latencies. :class:`RecentPercentile` keeps the
last ``size`` latencies in a ring and recomputes the percentile every ``every`` samples (a
sort of ``size`` floats, so about a sort per ``every`` attempts); until ``minimum`` samples
have come there is no value, and the caller does not hedge by time. Thread-safe: one lock,
taken once per sample (only hedged edges keep one).
"""

from __future__ import annotations

import math
import threading

RING_SIZE = 1000
"""Latencies kept: a p99 rests on the 10 slowest of them."""
RECOMPUTE_EVERY = 50
MINIMUM_SAMPLES = 100


class RecentPercentile:
    """The ``quantile`` (0-1) of the last ``size`` latencies added."""

    __slots__ = ("_count", "_every", "_lock", "_minimum", "_quantile", "_ring", "_size", "value")

    def __init__(
        self,
        quantile: float,
        *,
        size: int = RING_SIZE,
        every: int = RECOMPUTE_EVERY,
        minimum: int = MINIMUM_SAMPLES,
    ) -> None:
        if not 0.0 < quantile < 1.0:
            raise ValueError(f"quantile must be between 0 and 1, got {quantile}")
        self._quantile = quantile
        self._ring: list[float] = []
        self._size = size
        self._count = 0
        self._every = every
        self._minimum = min(minimum, size)
        self._lock = threading.Lock()
        self.value: float | None = None
        """The percentile at the last recomputation; None until ``minimum`` samples came."""

    def add(self, latency: float) -> None:
        """One attempt's latency (or, for an attempt cancelled unanswered, how long it had
        been outstanding: a lower bound, which keeps the slow tail in the sample)."""
        with self._lock:
            ring = self._ring
            count = self._count
            if len(ring) < self._size:
                ring.append(latency)
            else:
                ring[count % self._size] = latency
            count = self._count = count + 1
            if count >= self._minimum and count % self._every == 0:
                ordered = sorted(ring)  # the nearest-rank percentile
                rank = math.ceil(self._quantile * len(ordered))
                self.value = ordered[max(rank, 1) - 1]
