"""A deterministic harness: processes sharing one budget through a MemoryStore."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from meshspec_runtime.policy.config import RetryBudgetConfig
from meshspec_runtime.shared.budget import SharedBudget, shared_budget_for
from meshspec_runtime.shared.exchange import BudgetExchange, Send, SharingState
from meshspec_runtime.shared.protocol import MemoryStore


@dataclass
class Member:
    budget: SharedBudget
    exchange: BudgetExchange
    transitions: list[tuple[SharingState, SharingState]] = field(default_factory=list)
    requests: int = 0
    retries: int = 0


def members(
    config: RetryBudgetConfig, count: int, *, period: float = 0.1, seed: int = 1
) -> list[Member]:
    made = []
    for index in range(count):
        budget = shared_budget_for(config, random.Random(f"{seed}/grants/{index}"))
        exchange = BudgetExchange(
            budget,
            key="mesh/caller/upstream",
            member=f"p{index}",
            rng=random.Random(f"{seed}/{index}"),
            period=period,
        )
        member = Member(budget, exchange)
        exchange.add_listener(
            lambda old, new, _now, _members, seen=member.transitions: seen.append((old, new))
        )
        made.append(member)
    return made


def drive(member: Member, store: MemoryStore | None, now: float) -> None:
    """Run ``member``'s exchange if due; ``store`` None: the store is unreachable."""
    step = member.exchange.next(now)
    if isinstance(step, Send):
        reply = store.exchange(step.request, now) if store is not None else None
        member.exchange.receive(now, reply)


def traffic(
    group: list[Member],
    store: MemoryStore | None,
    *,
    start: float,
    stop: float,
    rate: float,
    failure: float,
    rng: random.Random,
    up: bool = True,
) -> None:
    """Each member makes ``rate`` requests a second; each fails with probability ``failure``
    and is then retried once if its budget allows."""
    step = 1 / rate
    ticks = round((stop - start) * rate)
    for tick in range(ticks):
        now = start + tick * step
        for member in group:
            drive(member, store if up else None, now)
            member.budget.on_request(now)
            member.requests += 1
            if rng.random() < failure and member.budget.try_withdraw(now):
                member.retries += 1
