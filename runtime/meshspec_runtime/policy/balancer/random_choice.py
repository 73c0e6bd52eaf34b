"""Random: a host drawn with probability proportional to its weight."""

from __future__ import annotations

from meshspec_runtime.policy.balancer.base import Balancer, Host, sampler


class RandomChoice(Balancer):
    __slots__ = ("_draw",)

    def _rebuild(self, pool: tuple[Host, ...]) -> None:
        self._draw = sampler(pool, self._rng)

    def _pick(self, now: float, key: str | None) -> Host:
        return self._draw()
