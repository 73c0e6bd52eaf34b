"""Client-side adaptive throttling, from the Google SRE book ("Handling Overload").

The client counts, over the last ``window`` seconds, the requests its application attempted
(``requests``, locally rejected ones included) and those the backend accepted (``accepts``).
A new request is rejected locally with probability::

    max(0, (requests - k * accepts) / (requests + 1))

Counts live in one-second slices (at most 600 slices: longer windows get wider ones); the
window at ``now`` is the slice holding ``now`` and the ones before it. The probability is
computed from the counts *before* the request is counted, so the very first request of a
window is never rejected.

Concurrency: counting takes no lock. The newest slice's two counts are a small list, published
with the totals of the older slices of the window as one tuple, ``current``; a request or an
accept adds 1 to that list. Moving to a new slice (once a slice, under the lock) folds the
finished slice into a ring of older ones, recomputes the totals from the ring and publishes a
new tuple. Races this accepts, all benign (the probability is an estimate over a window):

- ``counts[i] += 1`` is a read and a write. Under the GIL, CPython 3.11 switches threads only
  at calls and backward jumps, never between the two, so no count is lost; without a GIL
  (free-threaded builds) two threads adding 1 at once may count one.
- a thread that read ``current`` just before a move adds its 1 to the finished slice after it
  was folded (without a GIL only: under it, nothing can run between the read and the add, and
  a count that moves the window is added under the lock). The next move (and any read of the
  counts) picks such late counts up, so the estimate misses them for at most one slice; a
  count arriving after a second move is lost.
- the rejected total (a metric) is added to the same way.

Counts never drift: the totals are recomputed from the ring at every move, not kept by
subtraction.
"""

from __future__ import annotations

import math
import random
import threading

from meshspec_runtime.policy.config import AdaptiveThrottleConfig

MAX_BUCKETS = 600

_REQUESTS = 0  # the index of each count in a slice (Call inlines them as 0 and 1)
_ACCEPTS = 1

Current = tuple[float, list[int], int, int]
"""``(edge, counts, requests, accepts)``: where the newest slice ends, its ``[requests,
accepts]``, and the totals of the window's older slices."""


_UNUSED: Current = (-math.inf, [0, 0], 0, 0)
"""Every new throttle's ``current``, shared: its edge sends the first count to the lock, which
publishes the throttle's own (so its list is never counted in)."""


class AdaptiveThrottle:
    __slots__ = (
        "_head",
        "_lock",
        "_previous",
        "_rejected",
        "_ring",
        "_slices",
        "_width",
        "config",
        "current",
        "k",
    )

    def __init__(self, config: AdaptiveThrottleConfig, lock: threading.Lock | None = None) -> None:
        """``lock`` guards the state (default: a lock of its own); an ``UpstreamPolicies``
        gives all its policies one, as none of them calls another while holding it."""
        self.config = config
        self.k = config.k
        slices = min(MAX_BUCKETS, max(1, math.ceil(config.window)))
        self._slices = slices
        self._width = config.window / slices
        self._lock = threading.Lock() if lock is None else lock
        """Serialises moves to a new slice (and the reads that move the window)."""
        self._ring: list[int] = []
        """Finished slices' counts, ``[requests, accepts]`` of slice ``i`` at ``2 * (i %
        slices)``; allocated by the first move, so that a throttle never used costs nothing."""
        self._head: int | None = None
        """The newest slice's index (``floor(time / width)``); None before the first."""
        self._previous: tuple[list[int], int, int, int] | None = None
        """The last slice folded: ``(counts, ring index, requests, accepts folded)``, to pick up
        counts added to it late (module docstring)."""
        self.current: Current = _UNUSED
        self._rejected = 0

    def reject_probability(self, now: float) -> float:
        requests, accepts = self.window_counts(now)
        return max(0.0, (requests - self.k * accepts) / (requests + 1))

    def should_reject(self, now: float, rng: random.Random) -> bool:
        """Count this request, and say whether to fail it locally without sending it.
        (``Call.next`` inlines this.)"""
        edge, counts, requests, accepts = self.current
        if now < edge:
            requests += counts[_REQUESTS]
            counts[_REQUESTS] += 1
            accepts += counts[_ACCEPTS]
        else:
            requests, accepts = self.count_moving(now, _REQUESTS)
        return requests > self.k * accepts and self.rejects(requests, accepts, rng)

    def rejects(self, requests: int, accepts: int, rng: random.Random) -> bool:
        """The draw for a request counted after ``(requests, accepts)``, when rejection is
        possible (``requests > k * accepts``): drawing only then keeps the healthy path cheap,
        and the decisions still depend only on the seed and the inputs."""
        if rng.random() < (requests - self.k * accepts) / (requests + 1):
            self._rejected += 1
            return True
        return False

    def on_accept(self, now: float) -> None:
        """The backend accepted a request (answered it, without signalling overload).
        (``Call.record_success`` inlines this.)"""
        current = self.current
        if now < current[0]:
            current[1][_ACCEPTS] += 1
        else:
            self.count_moving(now, _ACCEPTS)

    def window_counts(self, now: float) -> tuple[int, int]:
        """``(requests, accepts)`` in the window at ``now``."""
        with self._lock:
            _, counts, requests, accepts = self._move(now)
            late_requests, late_accepts = self._late()
            return (
                requests + late_requests + counts[_REQUESTS],
                accepts + late_accepts + counts[_ACCEPTS],
            )

    @property
    def rejected_total(self) -> int:
        return self._rejected

    def count_moving(self, now: float, channel: int) -> tuple[int, int]:
        """Count at a ``now`` past the newest slice: move the window and add 1 to ``channel``
        under the lock (so that no count can land in a slice folded meanwhile); return the
        totals ``(requests, accepts)`` before this count."""
        with self._lock:
            _, counts, requests, accepts = self._move(now)
            requests += counts[_REQUESTS]
            accepts += counts[_ACCEPTS]
            counts[channel] += 1
            return requests, accepts

    def _move(self, now: float) -> Current:
        """Move the window to ``now`` (with the lock held); return the ``current`` that counts
        at ``now`` go to. A ``now`` older than the newest slice (threads read the clock before
        counting) counts in the newest slice."""
        current = self.current
        if now < current[0]:  # another thread moved it first
            return current
        index = math.floor(now / self._width)
        head = self._head
        if head is not None and index <= head:
            return current  # rounding at a slice edge: stay in the newest slice
        slices = self._slices
        ring = self._ring
        if not ring:
            ring = self._ring = [0] * (2 * slices)
        if head is not None:
            if index - head >= slices:
                ring[:] = [0] * (2 * slices)
                self._previous = None
            else:
                previous = self._previous
                if previous is not None:  # counts added late to the slice folded last
                    late_requests, late_accepts = self._late()
                    ring[previous[1]] += late_requests
                    ring[previous[1] + 1] += late_accepts
                finished = 2 * (head % slices)
                counts = current[1]
                requests, accepts = counts
                ring[finished] = requests
                ring[finished + 1] = accepts
                self._previous = (counts, finished, requests, accepts)
                for i in range(head + 1, index + 1):  # slices that leave the window
                    base = 2 * (i % slices)
                    ring[base] = ring[base + 1] = 0
        self._head = index
        # the new slice's place in the ring is zero: it holds only what is folded into it
        current = self.current = (
            (index + 1) * self._width,
            [0, 0],
            sum(ring[_REQUESTS::2]),
            sum(ring[_ACCEPTS::2]),
        )
        return current

    def _late(self) -> tuple[int, int]:
        """Counts added to the slice folded last since it was folded (with the lock held)."""
        previous = self._previous
        if previous is None:
            return 0, 0
        counts, _, requests, accepts = previous
        return counts[_REQUESTS] - requests, counts[_ACCEPTS] - accepts
