"""The exchange between one shared budget and the store, as a sans-I/O state machine.

The driver (the Redis store's background thread, or the simulator's SimPy process) asks
:meth:`BudgetExchange.next` what to do: ``Sleep(until)``, or ``Send(request)``; after a
``Send`` it performs the exchange and reports the store's answer with :meth:`receive`
(``None`` when the store failed or did not answer in time). The exchange never reads a clock or
touches a socket, so the simulator drives this same code against a simulated store.

States (transitions in ``_TRANSITIONS``; the rule for each lives in one place):

- ``joining``: no answer yet; the budget decides locally, whole (the share is not known);
- ``shared``: the store answers; exchanges every ``period``;
- ``local``: the store failed ``failures_to_fall_back`` times in a row: the budget decides
  alone with this process's share (its fallback), and the exchange tries the store again after
  a jittered exponential backoff (``period`` doubling up to ``backoff_max``, each delay drawn
  from its upper half). The first answer rejoins.

Counts that could not be sent are kept and sent with the next exchange; a window budget's are
dropped once older than its window (they would no longer count there).
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Protocol

from meshspec_runtime.policy.config import RetryBudgetConfig
from meshspec_runtime.shared.budget import SharedBudget
from meshspec_runtime.shared.protocol import BudgetShape, ExchangeReply, ExchangeRequest


class SharingState(StrEnum):
    JOINING = "joining"
    SHARED = "shared"
    LOCAL = "local"


_TRANSITIONS: Final = {
    # (state, the store answered) -> the next state
    (SharingState.JOINING, True): SharingState.SHARED,
    (SharingState.SHARED, True): SharingState.SHARED,
    (SharingState.LOCAL, True): SharingState.SHARED,
}
"""A failure moves ``joining`` or ``shared`` to ``local`` once failures are
``failures_to_fall_back`` in a row, and leaves the state alone before that."""


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``request`` to the store now, then ``receive`` its answer."""

    request: ExchangeRequest


@dataclass(frozen=True, slots=True)
class Sleep:
    """Nothing to do before ``until`` (``next`` again then)."""

    until: float


class ExchangeStateError(RuntimeError):
    """The driver broke the protocol (``next`` with an exchange in flight, or ``receive``
    without one)."""


SharingListener = Callable[[SharingState, SharingState, float, int], None]
"""``listener(old, new, now, members)`` on every change of state."""


class BudgetExchange:
    def __init__(
        self,
        budget: SharedBudget,
        *,
        key: str,
        member: str,
        rng: random.Random,
        period: float = 0.1,
        failures_to_fall_back: int = 2,
        backoff_max: float = 2.0,
    ) -> None:
        if not (0 < period <= backoff_max):
            raise ValueError(f"period ({period}s) must be above 0 and at most backoff_max")
        if failures_to_fall_back < 1:
            raise ValueError("failures_to_fall_back must be at least 1")
        self.budget = budget
        self.key = key
        self.member = member
        self.period = period
        self.failures_to_fall_back = failures_to_fall_back
        self.backoff_max = backoff_max
        self.rng = rng
        config = budget.config
        self.shape = BudgetShape.of(config)
        self.member_ttl = max(1.0, 10 * period)
        self.key_ttl = max(3600.0, 2 * config.window)
        self.state = SharingState.JOINING
        self.failures = 0
        """Failed exchanges in a row."""
        self.exchanges = 0
        """Answers received."""
        self._due = -math.inf
        self._in_flight: tuple[float, int, int] | None = None
        self._pending: deque[tuple[float, int, int]] = deque()
        """Counts taken but not yet delivered: ``(taken at, requests, retries)``."""
        self._listeners: list[SharingListener] = []

    def add_listener(self, listener: SharingListener) -> None:
        self._listeners.append(listener)

    def next(self, now: float) -> Send | Sleep:
        if self._in_flight is not None:
            raise ExchangeStateError(f"exchange of {self.key!r} is in flight: receive() first")
        if now < self._due:
            return Sleep(self._due)
        requests, retries, demand = self.budget.take_counts(now)
        if requests or retries:
            self._pending.append((now, requests, retries))
        if self.shape.kind == "window":
            horizon = now - self.budget.config.window
            while self._pending and self._pending[0][0] < horizon:
                self._pending.popleft()
        requests = sum(entry[1] for entry in self._pending)
        retries = sum(entry[2] for entry in self._pending)
        self._in_flight = (now, requests, retries)
        return Send(
            ExchangeRequest(
                self.key,
                self.member,
                requests,
                retries,
                demand,
                self.shape,
                self.member_ttl,
                self.key_ttl,
            )
        )

    def receive(self, now: float, reply: ExchangeReply | None) -> None:
        """The store's answer to the last ``Send``, or ``None``: it failed."""
        if self._in_flight is None:
            raise ExchangeStateError(f"exchange of {self.key!r}: receive() without a Send")
        sent_at = self._in_flight[0]
        self._in_flight = None
        old = self.state
        if reply is not None:
            self._pending.clear()
            self.failures = 0
            self.exchanges += 1
            self.budget.apply(reply, self.period)
            self.state = _TRANSITIONS[(old, True)]
            self._due = max(now, sent_at + self.period)
        else:
            self.failures += 1
            if old is not SharingState.LOCAL and self.failures >= self.failures_to_fall_back:
                self.budget.fall_back()
                self.state = SharingState.LOCAL
            self._due = now + self._retry_delay()
        if self.state is not old:
            for listener in self._listeners:
                listener(old, self.state, now, self.budget.view.members)

    def _retry_delay(self) -> float:
        """After a failure: the period until falling back, then a jittered doubling backoff."""
        if self.state is not SharingState.LOCAL:
            return self.period
        steps = self.failures - self.failures_to_fall_back
        ceiling = min(self.backoff_max, self.period * 2.0 ** min(steps, 60))
        return ceiling * (0.5 + 0.5 * self.rng.random())


class BudgetStore(Protocol):
    """What ``Mesh.open(shared_budgets=...)`` takes: a store that shares budgets, such as
    ``RedisStore``."""

    def share(
        self,
        config: RetryBudgetConfig,
        *,
        mesh: str,
        caller: str,
        upstream: str,
        listener: SharingListener | None = None,
    ) -> SharedBudget:
        """A budget shared from now on; ``listener`` hears every change of its state."""

    def close(self) -> None: ...
