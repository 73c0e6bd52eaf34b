"""Retry budgets: Finagle's windowed ``RetryBudget`` (as used by Linkerd), and a token bucket.

:class:`RetryBudget` is ``kind: window``; :class:`TokenBucketBudget` is ``kind: bucket``
(Brooker's retry token bucket, gRPC's ``retryThrottling``). Both take deposits the same
lock-free way, through ``newest`` (see below), so ``UpstreamPolicies.start`` inlines one rule
for both. ``budget_for`` builds the one a config asks for.

The window budget, exactly
--------------------------

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
under the GIL, so concurrent deposits are never lost. A slice gets its counter when it
becomes the newest (one a gap skips over takes no deposit, so needs none), and the ring is
made by the first deposit: a budget built and never used holds neither. Withdrawals, reads
and moving the window take the lock. Why no deposit is lost or misplaced:

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
from typing import Protocol

from meshspec_runtime.policy.config import RetryBudgetConfig

SLICES = 10

_ATOMIC_NEXT = getattr(sys, "_is_gil_enabled", lambda: True)()
"""``next()`` on an ``itertools.count`` is atomic: true whenever the GIL is on."""

_UNSTARTED: tuple[float, itertools.count[int]] = (-math.inf, itertools.count())
"""``newest`` of a window budget before its first deposit: every deposit takes the lock (and
makes the ring), so the counter is never used."""
_NO_RING: list[itertools.count[int] | None] = []
_NO_RING_READS: list[int] = []
"""The ring of a window budget before its first ``_advance``, shared: never written, since
every deposit, withdrawal and read goes through ``_advance`` first, which makes the budget's
own."""


class Budget(Protocol):
    """What the call path asks of a retry budget."""

    config: RetryBudgetConfig
    newest: tuple[float, itertools.count[int]]
    """``(edge, counter)``: a deposit at a time before ``edge`` is one ``next(counter)``."""

    def on_request(self, now: float) -> None: ...

    def try_withdraw(self, now: float) -> bool: ...

    def balance(self, now: float) -> float: ...

    @property
    def denied_total(self) -> int: ...


def deposit(budget: Budget, now: float) -> None:
    """The deposit rule that ``on_request`` and ``UpstreamPolicies.start`` (inlined) follow."""
    edge, deposits = budget.newest
    if now < edge:
        next(deposits)
    else:
        budget.on_request(now)


class RetryBudget:
    __slots__ = (
        "_denied",
        "_deposits",
        "_head",
        "_lock",
        "_ratio",
        "_reads",
        "_retries",
        "_retries_total",
        "_share",
        "_slot",
        "config",
        "newest",
    )

    def __init__(
        self, config: RetryBudgetConfig, share: float = 1.0, lock: threading.Lock | None = None
    ) -> None:
        """``share``: the part of the reserve this process holds (a shared budget's fallback);
        ``lock``: see :func:`budget_for`."""
        self.config = config
        self._ratio = config.ratio
        self._share = share
        """The part of the reserve (``min_per_second * window``) this process holds."""
        self._lock = threading.Lock() if lock is None else lock
        self._denied = 0
        self._deposits: list[itertools.count[int] | None] = _NO_RING
        """Deposits per slice, counted lock-free (see the module docstring); None for a slice
        that never was the newest, so never took a deposit. Made by the first ``_advance``
        (every deposit and read goes through one first)."""
        self._reads: list[int] = _NO_RING_READS
        """``next()`` calls made to read each slice's counter (each one added 1 to it)."""
        self._retries: list[int] | None = None
        """Granted retries per slice; made by the first one (a budget never withdrawn from
        needs none)."""
        self._retries_total = 0
        self._head: int | None = None
        """The newest slice's index (``floor(time / width)``); None before the first."""
        self._slot = 0
        self.newest: tuple[float, itertools.count[int]] = _UNSTARTED
        """Where the newest slice ends and its deposit counter; deposits before the edge go
        there without the lock."""

    def on_request(self, now: float) -> None:
        """A logical request (not a retry) was made: deposit ``ratio`` of a token."""
        edge, deposits = self.newest
        if now < edge:
            next(deposits)  # atomic under the GIL: no lock needed (module docstring)
            return
        with self._lock:
            self._advance(now)
            next(self.newest[1])  # the newest slice's counter, as of this advance

    def try_withdraw(self, now: float) -> bool:
        """Spend one token for a retry; ``False`` (and nothing spent) when the budget is dry."""
        with self._lock:
            return self._decide(self._advance(now))

    def balance(self, now: float) -> float:
        """Tokens available at ``now`` (a retry needs one)."""
        with self._lock:
            self._advance(now)
            return self._reserve() + self._ratio * self._requests() - self._retries_total

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

    def _decide(self, slot: int) -> bool:
        """The withdrawal rule: grant (and count in ``slot``) while a whole token is left."""
        if self._reserve() + self._ratio * self._requests() - self._retries_total >= 1:
            self._count_retry(slot)
            return True
        self._denied += 1
        return False

    def _requests(self) -> int:
        """Deposits in the window (as of the last ``_advance``)."""
        total = 0
        reads = self._reads
        for slot, counter in enumerate(self._deposits):
            if counter is not None:
                total += next(counter) - reads[slot]
                reads[slot] += 1
        return total

    def _slot_deposits(self) -> list[int]:
        """Deposits per slot (as of the last ``_advance``); read as ``_requests`` reads."""
        counts = []
        reads = self._reads
        for slot, counter in enumerate(self._deposits):
            if counter is None:
                counts.append(0)
            else:
                counts.append(next(counter) - reads[slot])
                reads[slot] += 1
        return counts

    def _slot_index(self, slot: int) -> int | None:
        """The slice (``floor(time / width)``) slot ``slot`` holds; None before the first."""
        head = self._head
        return None if head is None else head - (head - slot) % SLICES

    def _count_retry(self, slot: int) -> None:
        retries = self._retries
        if retries is None:
            retries = self._retries = [0] * SLICES
        retries[slot] += 1
        self._retries_total += 1

    def _set_share(self, share: float) -> None:
        self._share = share

    def _reserve(self) -> float:
        """Tokens the window holds beyond deposits (computed: a float per budget is 24 bytes)."""
        config = self.config
        return config.min_per_second * config.window * self._share

    def _advance(self, now: float) -> int:
        """Move the window to ``now``; return the slot counts at ``now`` go to. A ``now``
        older than the newest slice (clocks are read before the lock) counts in the newest."""
        if now < self.newest[0]:
            return self._slot
        width = self.config.window / SLICES
        index = math.floor(now / width)
        head = self._head
        if head is not None and index <= head:
            return self._slot  # rounding at a slice edge: stay in the newest slice
        if head is None:  # the first slice: the ring is made now
            first = index - SLICES + 1
            self._deposits = [None] * SLICES
            self._reads = [0] * SLICES
        else:
            first = max(head + 1, index - SLICES + 1)
        deposits = self._deposits
        reads = self._reads
        retries = self._retries if self._retries_total else None  # else every slot holds 0
        for i in range(first, index):  # the slices entering the window start empty
            slot = i % SLICES
            deposits[slot] = None  # skipped: it never is the newest, so no deposit goes there
            reads[slot] = 0
            if retries is not None:
                self._retries_total -= retries[slot]
                retries[slot] = 0
        slot = index % SLICES
        if retries is not None:
            self._retries_total -= retries[slot]
            retries[slot] = 0
        counter = deposits[slot] = itertools.count()
        reads[slot] = 0
        self._head = index
        self._slot = slot
        edge = (index + 1) * width if _ATOMIC_NEXT else -math.inf
        self.newest = (edge, counter)  # published last, in one assignment
        return slot


class TokenBucketBudget:
    """``kind: bucket``: starts with ``initial`` tokens (default: full), gains ``ratio`` of a
    token per request up to ``cap``; a retry takes one token and is refused when that would
    leave fewer than ``threshold``.

    Deposits are counted lock-free on one ``itertools.count`` (as :class:`RetryBudget`'s, see
    the module docstring) and folded into the balance under the lock, when a retry or a read
    needs it. Folding a run of deposits at once gives the balance adding them one by one would:
    between two folds nothing is withdrawn, and ``min(cap, min(cap, b + x) + y)`` is
    ``min(cap, b + x + y)`` for ``x, y >= 0``.
    """

    __slots__ = (
        "_balance",
        "_cap",
        "_counter",
        "_denied",
        "_folded",
        "_lock",
        "_ratio",
        "_reads",
        "_threshold",
        "config",
        "newest",
    )

    def __init__(
        self, config: RetryBudgetConfig, share: float = 1.0, lock: threading.Lock | None = None
    ) -> None:
        """``share``: the part of the bucket (fill, cap, threshold) this process holds;
        ``lock``: see :func:`budget_for`."""
        self.config = config
        self._ratio = config.ratio
        self._cap = config.cap * share
        self._threshold = config.threshold * share
        self._balance = config.fill * share
        self._lock = threading.Lock() if lock is None else lock
        self._denied = 0
        self._counter = itertools.count()
        self._reads = 0
        """``next()`` calls made to read the counter (each one added 1 to it)."""
        self._folded = 0
        """Deposits already in the balance."""
        edge = math.inf if _ATOMIC_NEXT else -math.inf
        self.newest: tuple[float, itertools.count[int]] = (edge, self._counter)
        """Every deposit goes to the one counter: lock-free while the GIL makes ``next()``
        atomic (the edge is then +inf), under the lock otherwise."""

    def on_request(self, now: float) -> None:
        """A logical request (not a retry) was made: deposit ``ratio`` of a token."""
        edge, deposits = self.newest
        if now < edge:
            next(deposits)  # atomic under the GIL: no lock needed
            return
        with self._lock:
            next(self._counter)

    def try_withdraw(self, now: float) -> bool:
        """Spend one token for a retry; ``False`` (and nothing spent) when the bucket is too low."""
        with self._lock:
            self._fold()
            return self._decide()

    def balance(self, now: float) -> float:
        """Tokens in the bucket at ``now``."""
        with self._lock:
            self._fold()
            return self._balance

    @property
    def denied_total(self) -> int:
        """Retries refused so far."""
        return self._denied

    # -- with the lock held -----------------------------------------------------------------

    def _decide(self) -> bool:
        """The withdrawal rule (deposits folded): grant while a token stays above threshold."""
        if self._balance - 1 >= self._threshold:
            self._balance -= 1
            return True
        self._denied += 1
        return False

    def _deposits_total(self) -> int:
        """Every deposit so far."""
        total = next(self._counter) - self._reads
        self._reads += 1
        return total

    def _fold(self) -> int:
        """Move the deposits made since the last fold into the balance; the total so far."""
        total = self._deposits_total()
        fresh = total - self._folded
        if fresh:
            self._folded = total
            self._balance = min(self._cap, self._balance + self._ratio * fresh)
        return total

    def _count_retry(self) -> None:
        """A retry granted elsewhere (by the shared budget): it empties this bucket too."""
        self._balance = max(0.0, self._balance - 1)

    def _set_share(self, share: float) -> None:
        self._cap = self.config.cap * share
        self._threshold = self.config.threshold * share
        self._balance = min(self._balance, self._cap)


def budget_for(
    config: RetryBudgetConfig, lock: threading.Lock | None = None
) -> RetryBudget | TokenBucketBudget:
    """The process-local budget ``config`` describes. ``lock`` guards its state (default: a
    lock of its own); an ``UpstreamPolicies`` gives all its policies one, as none of them
    calls another while holding it."""
    if config.kind == "window":
        return RetryBudget(config, lock=lock)
    return TokenBucketBudget(config, lock=lock)
