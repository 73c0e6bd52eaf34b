"""Round robin: each host in turn, starting at a random offset so clients do not move in step."""

from __future__ import annotations

from meshspec_runtime.policy.balancer.base import Balancer, Host


class RoundRobin(Balancer):
    __slots__ = ("_next", "_order")

    def _rebuild(self, pool: tuple[Host, ...]) -> None:
        self._next = int(self._rng.random() * len(pool))
        self._order = pool

    def _pick(self, now: float, key: str | None) -> Host:
        order = self._order
        index = self._next % len(order)  # a racing rebuild may have changed the length
        self._next = index + 1
        return order[index]
