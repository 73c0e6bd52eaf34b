"""What a process and the shared store say to each other, and the store's rule, in memory.

One exchange carries a process's counts since its last exchange (requests it made, retries it
spent), its demand (retries it wanted a second) and its budget's shape; the store adds the
counts to the service's budget, renews the process's membership and demand, and answers with
the service-wide balance, the number of live members and the sum of their demands.
:class:`MemoryStore` is that rule in Python: the simulator's store, and the reference the Redis
script (``shared.redis``) is tested against.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Literal

from meshspec_runtime.policy.budget import SLICES
from meshspec_runtime.policy.config import RetryBudgetConfig

SUPPLY_TIME = 1.0
"""Seconds over which the store smooths the tokens deposited a second."""


@dataclass(frozen=True, slots=True)
class BudgetShape:
    """A budget's settings as the store needs them (the same for every member)."""

    kind: Literal["window", "bucket"]
    ratio: float
    reserve: float
    """``window``: ``min_per_second x window``, the service's floor of retries."""
    width: float
    """``window``: the length of one of its slices (seconds)."""
    fill: float
    """``bucket``: the tokens a new bucket starts with."""
    cap: float
    """``bucket``: the most it holds."""

    @classmethod
    def of(cls, config: RetryBudgetConfig) -> BudgetShape:
        return cls(
            kind=config.kind,
            ratio=config.ratio,
            reserve=config.min_per_second * config.window,
            width=config.window / SLICES,
            fill=config.fill,
            cap=config.cap,
        )


@dataclass(frozen=True, slots=True)
class ExchangeRequest:
    key: str
    """The service's budget: one per (mesh, caller service, upstream)."""
    member: str
    """This process, unique among the service's replicas."""
    requests: int
    retries: int
    demand: float
    """Retries this process wanted a second, lately."""
    shape: BudgetShape
    member_ttl: float
    """Seconds this process counts as a member without another exchange."""
    key_ttl: float
    """Seconds the store keeps a budget no member exchanges with."""


@dataclass(frozen=True, slots=True)
class ExchangeReply:
    balance: float
    """Tokens of the service's budget after this exchange (a retry needs one)."""
    members: int
    """Live members, this process included (at least 1)."""
    demand: float
    """The live members' demands, summed (retries wanted a second)."""
    supply: float
    """Tokens deposited a second, lately (smoothed over ``SUPPLY_TIME``)."""


@dataclass(slots=True)
class _Entry:
    slices: dict[int, list[int]] = field(default_factory=dict)
    """``window``: slice index -> [requests, retries]."""
    balance: float | None = None
    """``bucket``: the balance; None until the first exchange."""
    members: dict[str, tuple[float, float]] = field(default_factory=dict)
    """member -> (when it stops counting, its demand)."""
    expiries: list[tuple[float, str]] = field(default_factory=list)
    """A heap of (when, member): a member's entries other than its latest are skipped."""
    demand: float = 0.0
    """The live members' demands, summed as they change."""
    supply: float = 0.0
    supply_at: float | None = None
    expires: float = math.inf


class MemoryStore:
    """The store's rule, exactly as the Redis script applies it, over a dict. Each exchange
    costs O(log members), as the script's (a sorted set of expiries, a running demand)."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def exchange(self, request: ExchangeRequest, now: float) -> ExchangeReply:
        entry = self._entries.get(request.key)
        if entry is None or entry.expires <= now:
            entry = self._entries[request.key] = _Entry()
        entry.expires = now + request.key_ttl
        self._renew(entry, request, now)
        shape = request.shape
        # an exponentially weighted rate: each token adds 1 / SUPPLY_TIME, decaying with age
        since = 0.0 if entry.supply_at is None else now - entry.supply_at
        entry.supply = entry.supply * math.exp(-since / SUPPLY_TIME)
        entry.supply += shape.ratio * request.requests / SUPPLY_TIME
        entry.supply_at = now
        if shape.kind == "window":
            head = math.floor(now / shape.width)
            counts = entry.slices.setdefault(head, [0, 0])
            counts[0] += request.requests
            counts[1] += request.retries
            requests = retries = 0
            for index in list(entry.slices):
                if index <= head - SLICES:
                    del entry.slices[index]
                else:
                    requests += entry.slices[index][0]
                    retries += entry.slices[index][1]
            balance = shape.reserve + shape.ratio * requests - retries
        else:
            start = shape.fill if entry.balance is None else entry.balance
            balance = min(shape.cap, start + shape.ratio * request.requests) - request.retries
            entry.balance = balance
        return ExchangeReply(balance, len(entry.members), max(0.0, entry.demand), entry.supply)

    @staticmethod
    def _renew(entry: _Entry, request: ExchangeRequest, now: float) -> None:
        """Renew the member and its demand; forget members whose time ran out."""
        member, until = request.member, now + request.member_ttl
        _, before = entry.members.get(member, (0.0, 0.0))
        entry.members[member] = (until, request.demand)
        entry.demand += request.demand - before
        heapq.heappush(entry.expiries, (until, member))
        expiries = entry.expiries
        while expiries and expiries[0][0] < now:
            when, gone = heapq.heappop(expiries)
            current = entry.members.get(gone)
            if current is not None and current[0] == when:
                del entry.members[gone]
                entry.demand -= current[1]
