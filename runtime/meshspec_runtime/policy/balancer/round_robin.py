"""Round robin: each host in turn, starting at a random offset so clients do not move in step."""

from __future__ import annotations

from meshspec_runtime.policy.balancer.base import Balancer, Host


class RoundRobin(Balancer):
    _next = 0

    def _rebuild(self, pool: tuple[Host, ...]) -> None:
        self._size = len(pool)
        self._next = int(self._rng.random() * self._size) if pool else 0

    def _pick(self, now: float, key: str | None) -> Host:
        index = self._next
        self._next = index + 1 if index + 1 < self._size else 0
        return self.pool[index]
