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
        self._extra = range(self.config.choices - 1)

    def _pick(self, now: float, key: str | None) -> Host:
        draw = self._draw
        assert draw is not None  # the base never picks from an empty pool
        best = draw()
        for _ in self._extra:
            candidate = draw()
            if candidate.active < best.active:
                best = candidate
        return best
