"""Bulkhead: at most ``limit`` calls in flight at once (counting permits, never blocks)."""

from __future__ import annotations

import threading


class Bulkhead:
    __slots__ = ("_in_use", "_limit", "_lock", "_rejected")

    def __init__(self, limit: int, lock: threading.Lock | None = None) -> None:
        """``lock`` guards the state (default: a lock of its own); an ``UpstreamPolicies``
        gives all its policies one, as none of them calls another while holding it."""
        if limit < 1:
            raise ValueError(f"bulkhead limit must be at least 1, got {limit}")
        self._limit = limit
        self._in_use = 0
        self._rejected = 0
        self._lock = threading.Lock() if lock is None else lock

    def try_acquire(self) -> bool:
        """Take a permit if one is free."""
        lock = self._lock
        lock.acquire()
        try:
            if self._in_use < self._limit:
                self._in_use += 1
                return True
            self._rejected += 1
            return False
        finally:
            lock.release()

    def release(self) -> None:
        """Give a permit back. Releasing more than was acquired is a bug: it raises."""
        lock = self._lock
        lock.acquire()
        try:
            if self._in_use == 0:
                raise RuntimeError("Bulkhead.release() without a matching try_acquire()")
            self._in_use -= 1
        finally:
            lock.release()

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def rejected_total(self) -> int:
        return self._rejected
