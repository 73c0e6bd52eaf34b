"""Integer counters over a sliding time window, in fixed slices (a ring of buckets).

Used by the time-based breaker window, the retry budget and the adaptive throttle. Slice ``i``
covers ``[i * width, (i + 1) * width)``; the window at time ``now`` is the slice holding
``now`` and the ``slices - 1`` slices before it. Updates are O(1) amortised: moving forward
clears at most ``slices`` buckets, and totals are kept incrementally. Counts are integers, so
totals never drift. Not thread-safe: each owner guards it with its own lock.
"""

from __future__ import annotations

import math

_BEFORE_ANY = -math.inf
"""``edge`` of a window that never advanced (one float for every window)."""
_NONE_YET: list[int] = []
"""``buckets`` and ``totals`` of a window that never advanced, shared: never written, since
every count goes through :meth:`SlidingCounters.advance` first, which gives the window its
own lists."""


class SlidingCounters:
    __slots__ = ("_channels", "_head", "_slices", "_width", "buckets", "edge", "slot", "totals")

    def __init__(self, window: float, slices: int, channels: int) -> None:
        if window <= 0 or slices < 1 or channels < 1:
            raise ValueError("window must be > 0, slices and channels >= 1")
        self._width = window / slices
        self._slices = slices
        self._channels = channels
        self.buckets = _NONE_YET
        """Bucket ``b``, channel ``c`` is ``buckets[b * channels + c]``; allocated by the first
        :meth:`advance` (every count goes through one first), so that a window never used
        costs no buckets."""
        self.totals = _NONE_YET
        """Per-channel totals as of the last :meth:`advance` (owners read; only this class
        and inlined hot paths of its owners write); allocated with the buckets."""
        self._head: int | None = None
        self.slot = 0
        """The bucket counts go to, as of the last :meth:`advance`."""
        self.edge = _BEFORE_ANY
        """Where the newest slice ends: until then, :meth:`advance` would return ``slot``."""

    @property
    def width(self) -> float:
        """Seconds per slice."""
        return self._width

    def advance(self, now: float) -> int:
        """Move the window to ``now``; return the slot (bucket index) counts at ``now`` go to.

        A ``now`` older than the newest slice seen (threads read the clock before taking the
        lock, so times can arrive slightly out of order) is counted in the newest slice.
        Hot callers skip the call while ``now < edge``: the answer is ``slot`` then.
        """
        if now < self.edge:
            return self.slot
        index = math.floor(now / self._width)
        head = self._head
        if head is not None and index <= head:
            return self.slot  # rounding at a slice edge: stay in the newest slice
        if head is None:  # the first advance (or the first since a reset): empty lists
            self.buckets = [0] * (self._slices * self._channels)
            self.totals = [0] * self._channels
        else:
            gap = index - head
            channels = self._channels
            buckets = self.buckets
            if gap >= self._slices:
                buckets[:] = [0] * len(buckets)
                self.totals[:] = [0] * channels
            else:
                totals = self.totals
                for i in range(head + 1, index + 1):
                    base = (i % self._slices) * channels
                    for c in range(channels):
                        value = buckets[base + c]
                        if value:
                            totals[c] -= value
                            buckets[base + c] = 0
        self._head = index
        self.slot = index % self._slices
        self.edge = (index + 1) * self._width
        return self.slot

    def add(self, now: float, channel: int, amount: int = 1) -> None:
        slot = self.advance(now)
        self.buckets[slot * self._channels + channel] += amount
        self.totals[channel] += amount

    def bump(self, slot: int, channel: int, amount: int = 1) -> None:
        """Add to ``slot`` as returned by the last :meth:`advance` (saves a second advance)."""
        self.buckets[slot * self._channels + channel] += amount
        self.totals[channel] += amount

    def total(self, now: float, channel: int) -> int:
        self.advance(now)
        return self.totals[channel]

    def reset(self) -> None:
        """Back to a window that never advanced (its lists are dropped)."""
        self.buckets = self.totals = _NONE_YET
        self._head = None
        self.slot = 0
        self.edge = _BEFORE_ANY
