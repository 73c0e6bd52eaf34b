"""Bulkhead: at most ``limit`` calls in flight at once (counting permits, never blocks).

Lock-free, as the balancers' active counts: permits held are markers in a list, and
``append``, ``pop`` and ``len`` of a list are atomic, with or without a GIL (the free-threaded
build locks each list). Taking a permit appends a marker first and then looks at the length:
a marker is in the list for as long as its permit is held, so a thread that sees at most
``limit`` markers after adding its own knows that at most ``limit`` permits are held, its own
included; one that sees more takes a marker back out and is refused. The limit therefore
holds under any interleaving. The race this accepts: two threads taking the last permit at
once may both see ``limit + 1`` and both be refused (a spurious refusal at the limit, never an
admission over it). ``in_use`` may count, for that instant, a marker about to be taken back.

``release`` takes a marker out; with none left it raises, as releasing more permits than
were taken is a bug. Refusals are counted under a lock: they are not the healthy path.
"""

from __future__ import annotations

import threading


class Bulkhead:
    __slots__ = ("_limit", "_lock", "_rejected", "held")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"bulkhead limit must be at least 1, got {limit}")
        self._limit = limit
        self.held: list[None] = []
        """One marker per permit held (and, for an instant, one per permit being refused);
        ``UpstreamPolicies.start`` and ``Call`` inline ``try_acquire`` and ``release``."""
        self._rejected = 0
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        """Take a permit if one is free."""
        held = self.held
        held.append(None)
        if len(held) <= self._limit:
            return True
        self.refuse()
        return False

    def refuse(self) -> None:
        """Take back the marker of a refused ``try_acquire`` and count the refusal."""
        self.held.pop()
        with self._lock:
            self._rejected += 1

    def release(self) -> None:
        """Give a permit back. Releasing more than was acquired is a bug: it raises."""
        try:
            self.held.pop()
        except IndexError:
            raise RuntimeError("Bulkhead.release() without a matching try_acquire()") from None

    @property
    def in_use(self) -> int:
        return len(self.held)

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def rejected_total(self) -> int:
        return self._rejected
