"""Bulkhead: at most ``limit`` calls in flight at once (counting permits, never blocks).

Lock-free while a permit is free: permits are tokens, made one at a time as needed and never
more than ``limit`` of them; a call takes a free one from a list with a single ``pop`` and
gives it back with a single ``append`` (both atomic, with or without a GIL: the free-threaded
build locks each list). Only when no token is free is the lock taken, to make a new one if
fewer than ``limit`` exist, or to refuse. Calls holding a permit are the tokens made minus
the free ones, so at most ``limit`` under any interleaving; a taker never holds anything it
has not been granted, so no racing thread is refused because of it. The list grows to the
most calls ever in flight at once, not to ``limit`` (which may be huge).

Races accepted: ``in_use`` reads two values without the lock and may be off by one for an
instant; ``release`` of more permits than were taken is detected (it raises) but, racing
other calls, only once the surplus shows.
"""

from __future__ import annotations

import threading


class Bulkhead:
    __slots__ = ("_limit", "_lock", "_made", "_rejected", "free")

    def __init__(self, limit: int, lock: threading.Lock | None = None) -> None:
        """``lock`` guards the state (default: a lock of its own); an ``UpstreamPolicies``
        gives all its policies one, as none of them calls another while holding it."""
        if limit < 1:
            raise ValueError(f"bulkhead limit must be at least 1, got {limit}")
        self._limit = limit
        self.free: list[bool] = []
        """Tokens not held by any call (``UpstreamPolicies.start`` and ``Call`` inline the
        pop and the append)."""
        self._made = 0
        """Tokens made so far (never more than ``limit``)."""
        self._rejected = 0
        self._lock = threading.Lock() if lock is None else lock

    def try_acquire(self) -> bool:
        """Take a permit if one is free."""
        free = self.free
        try:
            return free.pop() if free else self.acquire_slow()
        except IndexError:  # taken between the test and the pop (without a GIL only)
            return self.acquire_slow()

    def acquire_slow(self) -> bool:
        """No free token was seen: under the lock, take one freed meanwhile, make a new one
        if fewer than ``limit`` exist, or refuse (and count the refusal)."""
        with self._lock:
            free = self.free
            if free:
                try:
                    return free.pop()  # a token given back meanwhile
                except IndexError:  # taken by a lock-free pop meanwhile (without a GIL only)
                    pass
            if self._made < self._limit:
                self._made += 1
                return True
            self._rejected += 1
            return False

    def release(self) -> None:
        """Give a permit back. Releasing more than was acquired is a bug: it raises."""
        free = self.free
        free.append(True)
        if len(free) > self._made:  # more tokens free than exist
            free.pop()
            raise RuntimeError("Bulkhead.release() without a matching try_acquire()")

    @property
    def in_use(self) -> int:
        return self._made - len(self.free)

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def rejected_total(self) -> int:
        return self._rejected
