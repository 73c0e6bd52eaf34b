"""Least request with N choices (Envoy): draw ``choices`` hosts, keep the least busy.

Candidates are drawn independently (with replacement, as Envoy does), weighted by endpoint
weight; "busy" is the number of attempts in flight from this client. Ties go to the first drawn.
With the default of two choices this is the power of two choices.
"""

from __future__ import annotations

from functools import lru_cache, partial
from math import floor

from meshspec_runtime.policy.balancer.base import (
    Balancer,
    Host,
    draw_uniform,
    extra_draws,
    sampler,
)

# Draws become indexes with floor(), not int(): the same for x >= 0, and int(), a type call
# parsing its arguments, costs about as much as the rest of a pick.

_TABLE_MAX = 1024
"""Largest pool**2 for which every (first, second) pair is precomputed (32 hosts)."""


@lru_cache(maxsize=64)
def index_pairs(size: int) -> tuple[tuple[int, int], ...]:
    """``(both % size, both // size)`` for every ``both`` below ``size**2``, shared by every
    balancer with a pool of ``size``."""
    return tuple((both % size, both // size) for both in range(size**2))


class LeastRequest(Balancer):
    __slots__ = ("_extra", "_pair", "_random", "_sample", "_table")

    def _rebuild(self, pool: tuple[Host, ...]) -> None:
        uniform = len({h.weight for h in pool}) <= 1
        # one 53-bit draw covers both candidates exactly while size**2 stays far below 2**53
        fast = uniform and self.config.choices == 2 and len(pool) < 1 << 20
        size = len(pool)
        pairs = size**2
        self._extra = extra_draws(self.config.choices)
        self._random = draw = self._rng.random
        # equal weights: the draw ``sampler`` makes, without a closure per balancer
        self._sample = partial(draw_uniform, pool, draw) if uniform else sampler(pool, self._rng)
        # draw ``both``: the candidates are pool[both % size] and pool[both // size]; small
        # pools look the indexes up instead of computing them (same draw, same pair). Each of
        # the two is published whole; a pick reading one old and one new sees a valid pool.
        small = fast and pairs <= _TABLE_MAX
        self._table = (index_pairs(size), pairs, pool) if small else None
        self._pair = (pool, size, pairs) if fast and not small else None

    def pick(self, now: float, key: str | None = None, avoid: Host | None = None) -> Host | None:
        if avoid is None and self.pool:  # the common cases, inlined: two uniform draws
            table = self._table
            if table is not None:
                indexes, count, pool = table
                i, j = indexes[floor(self._random() * count)]
                first = pool[i]
                second = pool[j]
                return second if len(second.inflight) < len(first.inflight) else first
            pair = self._pair
            if pair is not None:
                pool, size, count = pair
                both = floor(self._random() * count)
                first = pool[both % size]
                second = pool[both // size]
                return second if len(second.inflight) < len(first.inflight) else first
        return super().pick(now, key, avoid)

    def _pick(self, now: float, key: str | None) -> Host:
        sample = self._sample
        best = sample()
        for _ in self._extra:
            candidate = sample()
            if len(candidate.inflight) < len(best.inflight):
                best = candidate
        return best
