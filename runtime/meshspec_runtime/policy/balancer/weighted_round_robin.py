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
    def _rebuild(self, pool: tuple[Host, ...]) -> None:
        self._weights = [h.weight for h in pool]
        self._current = [0] * len(pool)
        period = sum(self._weights) // reduce(gcd, self._weights, 0) if pool else 0
        if len(set(self._weights)) <= 1:  # equal weights: nginx's order is the listed order
            self._schedule: list[Host] | None = list(pool)
            self._period = len(pool)
        elif period * len(pool) <= MAX_SCHEDULE_WORK:
            order = smooth_schedule(self._weights, period, self._current)
            self._schedule = [pool[i] for i in order]
            self._period = period
        else:
            self._schedule = None
        self._next = 0

    def _pick(self, now: float, key: str | None) -> Host:
        schedule = self._schedule
        if schedule is None:
            return self.pool[smooth_schedule(self._weights, 1, self._current)[0]]
        index = self._next
        self._next = index + 1 if index + 1 < self._period else 0
        return schedule[index]
