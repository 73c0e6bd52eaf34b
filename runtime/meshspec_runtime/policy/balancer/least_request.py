"""Least request with N choices (Envoy): draw ``choices`` hosts, keep the least busy.

Candidates are drawn independently (with replacement, as Envoy does), weighted by endpoint
weight; "busy" is the number of attempts in flight from this client. Ties go to the first drawn.
With the default of two choices this is the power of two choices.
"""

from __future__ import annotations

from meshspec_runtime.policy.balancer.base import Balancer, Host, sampler


class LeastRequest(Balancer):
    _pair: tuple[tuple[Host, ...], int, int] | None = None

    def _rebuild(self, pool: tuple[Host, ...]) -> None:
        uniform = len({h.weight for h in pool}) <= 1
        # one 53-bit draw covers both candidates exactly while size**2 stays far below 2**53
        fast = uniform and self.config.choices == 2 and len(pool) < 1 << 20
        self._extra = range(self.config.choices - 1)
        self._random = self._rng.random
        self._sample = sampler(pool, self._rng)
        self._pair = (pool, len(pool), len(pool) ** 2) if fast else None

    def pick(self, now: float, key: str | None = None, avoid: Host | None = None) -> Host | None:
        pair = self._pair
        if pair is not None and avoid is None and self.pool:
            # the common case, inlined: two uniform draws
            pool, size, pairs = pair
            both = int(self._random() * pairs)
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
