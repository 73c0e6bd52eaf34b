"""Retry budgets shared by every replica of a service: the local view the call path reads.

A shared budget is the process-local budget of the same shape (its deposits, lock-free, and
its withdrawals take the same paths) plus a view of the service's budget, refreshed by the
background exchange (``shared.exchange``):

- while sharing, a retry is granted when ``allowance + ratio x requests - retries >= 1``,
  where ``allowance`` is this process's share (``1 / members``) of the service's balance at
  the last exchange (above the bucket's threshold), and requests and retries are this
  process's own since then. Every member spends at most its share of the balance it was told,
  plus what it deposited itself, so the service never spends more than its budget holds (give
  or take one exchange period when members join or leave);
- the local budget keeps counting this process's requests and retries all along, sized by its
  share (a window budget's reserve, a bucket's fill, cap and threshold, times ``1 /
  members``): when the store is unreachable (``fall_back``) it decides alone, already warm.
"""

from __future__ import annotations

from meshspec_runtime.policy.budget import SLICES, RetryBudget, TokenBucketBudget
from meshspec_runtime.policy.config import RetryBudgetConfig


class SharedView:
    """This process's view of the service's budget (read and written with the ledger's lock)."""

    __slots__ = ("allowance", "fallbacks", "members", "retries_since", "sharing")

    def __init__(self) -> None:
        self.sharing = False
        """True while the store answers; False before the first answer and after a fallback."""
        self.allowance = 0.0
        """This process's share of the service's balance, as of the last exchange, with its own
        counts sent since folded in."""
        self.retries_since = 0
        """Retries granted since the last exchange was sent."""
        self.members = 1
        self.fallbacks = 0
        """Times the budget fell back to its local share."""

    def spend(self, deposited: float) -> bool:
        """The shared rule: a retry is granted while a whole token is left."""
        if self.allowance + deposited - self.retries_since >= 1:
            self.retries_since += 1
            return True
        return False

    def take(self, deposited: float) -> int:
        """Counts are being sent: fold them into the allowance; the retries to send."""
        retries = self.retries_since
        self.allowance += deposited - retries
        self.retries_since = 0
        return retries


class SharedRetryBudget(RetryBudget):
    """``kind: window``, ``scope: service``."""

    __slots__ = ("_reported", "_reported_at", "view")

    def __init__(self, config: RetryBudgetConfig) -> None:
        super().__init__(config)
        self.view = SharedView()
        self._reported = [0] * SLICES
        """Deposits of each slot already sent, for the slice in ``_reported_at``."""
        self._reported_at: list[int | None] = [None] * SLICES

    def take_counts(self, now: float) -> tuple[int, int]:
        """``(requests, retries)`` since the last call, to send to the store."""
        with self._lock:
            self._advance(now)
            fresh, counts = self._unreported()
            self._reported = counts
            self._reported_at = [self._slot_index(slot) for slot in range(SLICES)]
            return fresh, self.view.take(self._ratio * fresh)

    def apply(self, balance: float, members: int) -> None:
        """The store's answer: the service's balance and its live members."""
        with self._lock:
            view = self.view
            view.members = members
            view.allowance = balance / members
            view.sharing = True
            self._set_share(1 / members)

    def fall_back(self) -> None:
        with self._lock:
            self.view.sharing = False
            self.view.fallbacks += 1

    def _decide(self, slot: int) -> bool:
        view = self.view
        if not view.sharing:
            granted = super()._decide(slot)
            view.retries_since += granted  # the service's budget pays for it too
            return granted
        fresh, _ = self._unreported()
        if view.spend(self._ratio * fresh):
            self._count_retry(slot)
            return True
        self._denied += 1
        return False

    def _unreported(self) -> tuple[int, list[int]]:
        """Deposits not yet sent, and the deposits per slot now."""
        counts = self._slot_deposits()
        fresh = 0
        for slot, count in enumerate(counts):
            sent = self._reported[slot] if self._reported_at[slot] == self._slot_index(slot) else 0
            fresh += count - sent
        return fresh, counts


class SharedTokenBucket(TokenBucketBudget):
    """``kind: bucket``, ``scope: service``."""

    __slots__ = ("_reported", "view")

    def __init__(self, config: RetryBudgetConfig) -> None:
        super().__init__(config)
        self.view = SharedView()
        self._reported = 0

    def take_counts(self, now: float) -> tuple[int, int]:
        """``(requests, retries)`` since the last call, to send to the store."""
        with self._lock:
            total = self._fold()
            fresh = total - self._reported
            self._reported = total
            return fresh, self.view.take(self._ratio * fresh)

    def apply(self, balance: float, members: int) -> None:
        """The store's answer: the service's balance and its live members."""
        with self._lock:
            view = self.view
            view.members = members
            view.allowance = (balance - self.config.threshold) / members
            view.sharing = True
            self._set_share(1 / members)

    def fall_back(self) -> None:
        with self._lock:
            self.view.sharing = False
            self.view.fallbacks += 1

    def _decide(self) -> bool:
        view = self.view
        if not view.sharing:
            granted = super()._decide()
            view.retries_since += granted  # the service's budget pays for it too
            return granted
        if view.spend(self._ratio * (self._folded - self._reported)):
            self._count_retry()
            return True
        self._denied += 1
        return False


SharedBudget = SharedRetryBudget | SharedTokenBucket


def shared_budget_for(config: RetryBudgetConfig) -> SharedBudget:
    """The shared budget ``config`` describes (its local share starts whole: until the store
    answers, this process does not know how many replicas share it)."""
    return SharedRetryBudget(config) if config.kind == "window" else SharedTokenBucket(config)
