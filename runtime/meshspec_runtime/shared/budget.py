"""Retry budgets shared by every replica of a service: the local view the call path reads.

A shared budget is the process-local budget of the same shape (its deposits, lock-free, and
its withdrawals take the same paths) plus a view of the service's budget, refreshed by the
background exchange (``shared.exchange``) every ``period``. Each exchange sends this process's
requests, retries and demand (retries it wanted, a second, smoothed); the store answers with
the service's balance ``G`` (above a bucket's threshold) and the service's demand ``D`` (the
sum of its members'). Until the next answer:

- while sharing, each retry this process wants is granted with probability
  ``q = min(1, G / (D x period))``: the members together want ``D x period`` retries in a
  period, so they spend about ``G``, each in proportion to its own demand, however many they
  are and however rarely each retries (a thousand replicas of a bucket of ten tokens spend it
  just as one process would). No member takes more than its part ``G x d / D`` (``d``: its
  demand) plus one between two answers, so a late answer cannot let it spend on;
- the local budget keeps counting this process's requests and retries all along, sized by its
  share (a window budget's reserve, a bucket's fill, cap and threshold, times ``1 /
  members``): before the first answer, and whenever the store is unreachable (``fall_back``),
  it decides alone, already warm.
"""

from __future__ import annotations

import math
import random

from meshspec_runtime.policy.budget import SLICES, RetryBudget, TokenBucketBudget
from meshspec_runtime.policy.config import RetryBudgetConfig
from meshspec_runtime.shared.protocol import ExchangeReply

DEMAND_TIME = 1.0
"""Seconds over which a member's demand (retries wanted a second) is smoothed."""


class SharedView:
    """This process's view of the service's budget (read and written with the ledger's lock)."""

    __slots__ = (
        "demand",
        "fallbacks",
        "granted",
        "limit",
        "members",
        "probability",
        "retries",
        "rng",
        "sharing",
        "taken_at",
        "wanted",
    )

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        """Draws the grants."""
        self.sharing = False
        """True while the store answers; False before the first answer and after a fallback."""
        self.probability = 0.0
        """``q``: the chance a wanted retry is granted, until the next answer."""
        self.limit = 0.0
        """The most retries granted until the next answer."""
        self.granted = 0
        """Retries granted since the last answer."""
        self.retries = 0
        """Retries granted since the counts were last sent."""
        self.wanted = 0
        """Retries wanted (granted or not) since the counts were last sent."""
        self.demand = 0.0
        """This process's retries wanted a second, smoothed over ``DEMAND_TIME``."""
        self.taken_at: float | None = None
        self.members = 1
        self.fallbacks = 0
        """Times the budget fell back to its local share."""

    def spend(self) -> bool:
        """The shared rule (see the module docstring)."""
        self.wanted += 1
        if self.granted + 1 <= self.limit and (
            self.probability >= 1 or self.rng.random() < self.probability
        ):
            self.granted += 1
            self.retries += 1
            return True
        return False

    def count_local(self, granted: bool) -> None:
        """A retry the local budget decided on: the service's budget pays for it too."""
        self.wanted += 1
        self.retries += granted

    def take(self, now: float) -> tuple[int, float]:
        """Counts are being sent: the retries to send and this process's demand."""
        if self.taken_at is None:
            self.demand = 0.0
        elif now > self.taken_at:
            elapsed = now - self.taken_at
            weight = 1 - math.exp(-elapsed / DEMAND_TIME)
            self.demand += weight * (self.wanted / elapsed - self.demand)
        self.taken_at = now
        retries, self.retries, self.wanted = self.retries, 0, 0
        return retries, self.demand

    def apply(self, available: float, reply: ExchangeReply, period: float) -> None:
        """The store's answer: ``available`` tokens (above the threshold), the service's
        demand and supply."""
        members, demand = max(1, reply.members), reply.demand
        self.members = members
        self.sharing = True
        self.granted = 0
        available += reply.supply * period
        if available <= 0:
            self.probability, self.limit = 0.0, 0.0
        elif demand <= 0:  # nobody wanted a retry lately: an equal part each
            self.probability, self.limit = 1.0, available / members + 1
        else:
            self.probability = min(1.0, available / (demand * period))
            self.limit = available * self.demand / demand + 1


class SharedRetryBudget(RetryBudget):
    """``kind: window``, ``scope: service``."""

    __slots__ = ("_reported", "_reported_at", "view")

    def __init__(self, config: RetryBudgetConfig, rng: random.Random) -> None:
        super().__init__(config)
        self.view = SharedView(rng)
        self._reported = [0] * SLICES
        """Deposits of each slot already sent, for the slice in ``_reported_at``."""
        self._reported_at: list[int | None] = [None] * SLICES

    def take_counts(self, now: float) -> tuple[int, int, float]:
        """``(requests, retries, demand)``: the counts since the last call, to send."""
        with self._lock:
            self._advance(now)
            counts = self._slot_deposits()
            fresh = 0
            for slot, count in enumerate(counts):
                index = self._slot_index(slot)
                fresh += count - (self._reported[slot] if self._reported_at[slot] == index else 0)
            self._reported = counts
            self._reported_at = [self._slot_index(slot) for slot in range(SLICES)]
            return (fresh, *self.view.take(now))

    def apply(self, reply: ExchangeReply, period: float) -> None:
        """The store's answer (see ``SharedView.apply``)."""
        with self._lock:
            self.view.apply(reply.balance, reply, period)
            self._set_share(1 / self.view.members)

    def fall_back(self) -> None:
        with self._lock:
            self.view.sharing = False
            self.view.fallbacks += 1

    def _decide(self, slot: int) -> bool:
        view = self.view
        if not view.sharing:
            granted = super()._decide(slot)
            view.count_local(granted)
            return granted
        if view.spend():
            self._count_retry(slot)
            return True
        self._denied += 1
        return False


class SharedTokenBucket(TokenBucketBudget):
    """``kind: bucket``, ``scope: service``."""

    __slots__ = ("_reported", "view")

    def __init__(self, config: RetryBudgetConfig, rng: random.Random) -> None:
        super().__init__(config)
        self.view = SharedView(rng)
        self._reported = 0

    def take_counts(self, now: float) -> tuple[int, int, float]:
        """``(requests, retries, demand)``: the counts since the last call, to send."""
        with self._lock:
            total = self._fold()
            fresh = total - self._reported
            self._reported = total
            return (fresh, *self.view.take(now))

    def apply(self, reply: ExchangeReply, period: float) -> None:
        """The store's answer (see ``SharedView.apply``)."""
        with self._lock:
            self.view.apply(reply.balance - self.config.threshold, reply, period)
            self._set_share(1 / self.view.members)

    def fall_back(self) -> None:
        with self._lock:
            self.view.sharing = False
            self.view.fallbacks += 1

    def _decide(self) -> bool:
        view = self.view
        if not view.sharing:
            granted = super()._decide()
            view.count_local(granted)
            return granted
        if view.spend():
            self._count_retry()
            return True
        self._denied += 1
        return False


SharedBudget = SharedRetryBudget | SharedTokenBucket


def shared_budget_for(config: RetryBudgetConfig, rng: random.Random) -> SharedBudget:
    """The shared budget ``config`` describes (its local share starts whole: until the store
    answers, this process does not know how many replicas share it)."""
    if config.kind == "window":
        return SharedRetryBudget(config, rng)
    return SharedTokenBucket(config, rng)
