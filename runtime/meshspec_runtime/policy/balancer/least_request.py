"""Least request with N choices (Envoy): draw ``choices`` hosts, keep the least busy.

Candidates are drawn independently (with replacement, as Envoy does), weighted by endpoint
weight; "busy" is the number of attempts in flight from this client. Ties go to the first drawn.
With the default of two choices this is the power of two choices.
"""

from __future__ import annotations

from math import floor

from meshspec_runtime.policy.balancer.base import (
    Balancer,
    Host,
    UniformDraw,
    extra_draws,
    sampler,
)

# Draws become indexes with floor(), not int(): the same for x >= 0, and int(), a type call
# parsing its arguments, costs about as much as the rest of a pick.

_TABLE_MAX = 1024
"""Largest pool**2 for which every (first, second) pair is precomputed (32 hosts)."""


class LeastRequest(Balancer):
    __slots__ = ("_extra", "_pair", "_random", "_sample", "_table")

    _table: tuple[tuple[Host, ...], tuple[Host, ...], int] | None
    _pair: tuple[tuple[Host, ...], int, int] | None

    def _rebuild(self, pool: tuple[Host, ...]) -> None:
        uniform = len({h.weight for h in pool}) <= 1
        # one 53-bit draw covers both candidates exactly while size**2 stays far below 2**53
        fast = uniform and self.config.choices == 2 and len(pool) < 1 << 20
        size = len(pool)
        pairs = size**2
        self._extra = extra_draws(self.config.choices)
        self._random = draw = self._rng.random
        # equal weights: the draw ``sampler`` makes, without a closure per balancer
        self._sample = UniformDraw(pool, draw) if uniform else sampler(pool, self._rng)
        # draw ``both``: the candidates are pool[both % size] and pool[both // size]; small
        # pools look them up instead of computing them (same draw, same pair), in two flat
        # tuples (``firsts[both]`` is pool[both % size], ``seconds[both]`` pool[both // size]):
        # 2 x size**2 pointers, where a tuple of pairs held a 56-byte tuple per pair. Each of
        # the two is published whole; a pick reading one old and one new sees a valid pool.
        small = fast and pairs <= _TABLE_MAX
        if small:
            seconds = tuple(host for host in pool for _ in range(size))
            self._table = (pool * size, seconds, pairs)
        else:
            self._table = None
        self._pair = (pool, size, pairs) if fast and not small else None

    def pick(self, now: float, key: str | None = None, avoid: Host | None = None) -> Host | None:
        if avoid is None and self.pool:  # the common cases, inlined: two uniform draws
            table = self._table
            if table is not None:
                firsts, seconds, count = table
                both = floor(self._random() * count)
                first = firsts[both]
                second = seconds[both]
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
