"""Least request with N choices (Envoy): draw ``choices`` hosts, keep the least busy.

Candidates are drawn independently (with replacement, as Envoy does), weighted by endpoint
weight; "busy" is the number of attempts in flight from this client. Ties go to the first drawn.
With the default of two choices this is the power of two choices.
"""

from __future__ import annotations

from meshspec_runtime.policy.balancer.base import Balancer, Host, sampler


class LeastRequest(Balancer):
    def _rebuild(self, pool: tuple[Host, ...]) -> None:
        self._draw = sampler(pool, self._rng) if pool else None
        self._uniform = len({h.weight for h in pool}) <= 1
        self._size = len(pool)
        self._pairs = len(pool) * len(pool)
        self._random = self._rng.random
        # one 53-bit draw covers both candidates exactly while size**2 stays far below 2**53
        self._fast = 0 < len(pool) < 1 << 20 and self._uniform and self.config.choices == 2
        self._extra = range(self.config.choices - 1)

    def pick(self, now: float, key: str | None = None, avoid: Host | None = None) -> Host | None:
        if self._fast and avoid is None:  # the common case, inlined: two uniform draws
            pool = self.pool
            size = self._size
            both = int(self._random() * self._pairs)  # one draw for the pair of candidates
            first = pool[both % size]
            second = pool[both // size]
            return second if second.active < first.active else first
        return super().pick(now, key, avoid)

    def _pick(self, now: float, key: str | None) -> Host:
        sample = self._draw
        assert sample is not None  # the base never picks from an empty pool
        best = sample()
        for _ in self._extra:
            candidate = sample()
            if candidate.active < best.active:
                best = candidate
        return best
