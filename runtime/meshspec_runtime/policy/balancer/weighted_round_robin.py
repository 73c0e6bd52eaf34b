"""Smooth weighted round robin (nginx): weights respected, picks of one host spread out.

nginx's algorithm costs O(hosts) per pick. Its sequence is periodic (one period is
sum(weights) / gcd(weights) picks), so the period is computed once per pool change and picks
walk it in O(1). A period too large to precompute falls back to the per-pick algorithm.
"""

from __future__ import annotations

from functools import reduce
from math import gcd

from meshspec_runtime.policy.balancer.base import Balancer, Host

MAX_SCHEDULE_WORK = 1 << 20
"""Largest hosts x period worth precomputing (about a second of Python at worst)."""


def smooth_schedule(weights: list[int], picks: int, current: list[int]) -> list[int]:
    """nginx's smooth weighted round robin: ``picks`` indexes, advancing ``current`` in place."""
    total = sum(weights)
    order: list[int] = []
    indexes = range(len(weights))
    for _ in range(picks):
        best = 0
        for i in indexes:
            current[i] += weights[i]
            if current[i] > current[best]:
                best = i
        current[best] -= total
        order.append(best)
    return order


class WeightedRoundRobin(Balancer):
    __slots__ = ("_next", "_plan")

    def _rebuild(self, pool: tuple[Host, ...]) -> None:
        weights = [h.weight for h in pool]
        period = sum(weights) // reduce(gcd, weights, 0)
        schedule: list[Host] | None
        if len(set(weights)) <= 1:  # equal weights: nginx's order is the listed order
            schedule = list(pool)
        elif period * len(pool) <= MAX_SCHEDULE_WORK:
            schedule = [pool[i] for i in smooth_schedule(weights, period, [0] * len(pool))]
        else:
            schedule = None
        self._next = 0
        self._plan = (schedule, pool, weights, [0] * len(pool))

    def _pick(self, now: float, key: str | None) -> Host:
        schedule, pool, weights, current = self._plan
        if schedule is None:
            return pool[smooth_schedule(weights, 1, current)[0]]
        index = self._next % len(schedule)
        self._next = index + 1
        return schedule[index]
