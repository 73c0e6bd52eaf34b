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

Deposits take no lock. ``on_request`` runs once per logical request, withdrawals only on
retries, so each slice counts its deposits with its own ``itertools.count``: a deposit is one
``next()`` on the counter of the newest slice, a single C call that cannot be interrupted
under the GIL, so concurrent deposits are never lost. Withdrawals, reads and moving the window
take the lock. Why no deposit is lost or misplaced:

- a deposit reads ``(edge, counter)`` of the newest slice from one attribute, published by a
  single assignment, so the pair is consistent; ``now < edge`` means ``now`` falls in that
  slice or before it, so counting it there is the usual rule (an older time counts in the
  newest slice seen);
- if the window moves on between that read and the ``next()``, the counter still belongs to
  its slice, which is still in the window and read with it: the deposit is counted at its own
  time. Only once that slice expired is the counter dropped (a fresh one takes its place), and
  a deposit landing on a dropped counter was outside the window anyway;
- a counter is read with ``next()`` too, under the lock: the value it returns is the number
  of earlier ``next()`` calls, i.e. deposits plus the reads before this one, which the budget
  remembers per slice and subtracts.

Without a GIL (free-threaded CPython) every deposit takes the lock instead.
"""

from __future__ import annotations

import itertools
import math
import sys
import threading

from meshspec_runtime.policy.config import RetryBudgetConfig

SLICES = 10

_ATOMIC_NEXT = getattr(sys, "_is_gil_enabled", lambda: True)()
"""``next()`` on an ``itertools.count`` is atomic: true whenever the GIL is on."""


class RetryBudget:
    __slots__ = (
        "_denied",
        "_deposits",
        "_head",
        "_lock",
        "_ratio",
        "_reads",
        "_reserve",
        "_retries",
        "_retries_total",
        "_slot",
        "_width",
        "config",
        "newest",
    )

    def __init__(self, config: RetryBudgetConfig) -> None:
        self.config = config
        self._ratio = config.ratio
        self._reserve = config.min_per_second * config.window
        self._width = config.window / SLICES
        self._lock = threading.Lock()
        self._denied = 0
        self._deposits = [itertools.count() for _ in range(SLICES)]
        """Deposits per slice, counted lock-free (see the module docstring)."""
        self._reads = [0] * SLICES
        """``next()`` calls made to read each slice's counter (each one added 1 to it)."""
        self._retries = [0] * SLICES
        self._retries_total = 0
        self._head: int | None = None
        """The newest slice's index (``floor(time / width)``); None before the first."""
        self._slot = 0
        self.newest: tuple[float, itertools.count[int]] = (-math.inf, self._deposits[0])
        """Where the newest slice ends and its deposit counter; deposits before the edge go
        there without the lock."""

    def on_request(self, now: float) -> None:
        """A logical request (not a retry) was made: deposit ``ratio`` of a token."""
        edge, deposits = self.newest
        if now < edge:
            next(deposits)  # atomic under the GIL: no lock needed (module docstring)
            return
        with self._lock:
            next(self._deposits[self._advance(now)])

    def try_withdraw(self, now: float) -> bool:
        """Spend one token for a retry; ``False`` (and nothing spent) when the budget is dry."""
        with self._lock:
            slot = self._advance(now)
            if self._reserve + self._ratio * self._requests() - self._retries_total >= 1:
                self._retries[slot] += 1
                self._retries_total += 1
                return True
            self._denied += 1
            return False

    def balance(self, now: float) -> float:
        """Tokens available at ``now`` (a retry needs one)."""
        with self._lock:
            self._advance(now)
            return self._reserve + self._ratio * self._requests() - self._retries_total

    def window_counts(self, now: float) -> tuple[int, int]:
        """``(requests, retries)`` counted in the window at ``now``."""
        with self._lock:
            self._advance(now)
            return self._requests(), self._retries_total

    @property
    def denied_total(self) -> int:
        """Retries refused so far."""
        return self._denied

    # -- with the lock held -----------------------------------------------------------------

    def _requests(self) -> int:
        """Deposits in the window (as of the last ``_advance``)."""
        total = 0
        reads = self._reads
        for slot, counter in enumerate(self._deposits):
            total += next(counter) - reads[slot]
            reads[slot] += 1
        return total

    def _advance(self, now: float) -> int:
        """Move the window to ``now``; return the slot counts at ``now`` go to. A ``now``
        older than the newest slice (clocks are read before the lock) counts in the newest."""
        if now < self.newest[0]:
            return self._slot
        index = math.floor(now / self._width)
        head = self._head
        if head is not None and index <= head:
            return self._slot  # rounding at a slice edge: stay in the newest slice
        first = index - SLICES + 1 if head is None else max(head + 1, index - SLICES + 1)
        for i in range(first, index + 1):  # the slices entering the window start empty
            slot = i % SLICES
            self._retries_total -= self._retries[slot]
            self._retries[slot] = 0
            self._deposits[slot] = itertools.count()
            self._reads[slot] = 0
        self._head = index
        slot = self._slot = index % SLICES
        edge = (index + 1) * self._width if _ATOMIC_NEXT else -math.inf
        self.newest = (edge, self._deposits[slot])  # published last, in one assignment
        return slot
