"""Ring hash (ketama-style consistent hashing).

Each host owns ``scale x weight`` points on a 64-bit ring, ``scale`` being the largest power of
two that keeps the ring within ``ring_size`` points (at least 1); a key goes to the owner of the
first point at or after the key's hash. A host's points depend only on its id, weight and the
scale, and the scale only changes when the total weight crosses a power of two, so adding or
removing a host moves exactly the keys won or lost by that host's points, as in ketama. A call
without a key gets a random position. On a retry the walk continues to the next point owned by
a different host.

The ring holds every endpoint and is built only when the endpoint set changes; an unavailable
host (unhealthy, ejected) is skipped at pick time by walking on to the next point, which is
where its keys would go on a ring without it. So a health change or an ejection costs no
rebuild under the upstream's lock, and keys of available hosts never move.
"""

from __future__ import annotations

from bisect import bisect_left

from meshspec_runtime.policy.balancer.base import Balancer, Host
from meshspec_runtime.policy.balancer.hashing import hash64

Ring = tuple[list[int], list[Host]]


class RingHash(Balancer):
    _state: tuple[Ring, frozenset[Host]]
    """The ring and the hosts picks may return (the pool), published together."""
    _built_for: tuple[Host, ...] | None = None
    ring_builds = 0
    """How many times the ring was built (once per endpoint set)."""

    def _rebuild(self, pool: tuple[Host, ...]) -> None:
        everyone = self.hosts
        if self._built_for is not everyone:  # a new endpoint set (hosts, weights)
            ring = self._build(everyone)
            self._built_for = everyone
            self.ring_builds += 1
        else:
            ring = self._state[0]
        # one assignment: a pick sees the old ring and hosts, or the new ones
        self._state = (ring, frozenset(pool))

    def _build(self, hosts: tuple[Host, ...]) -> Ring:
        total = sum(h.weight for h in hosts)
        scale = 1 << max(0, (self.config.ring_size // total).bit_length() - 1)
        points: list[tuple[int, str, Host]] = []
        for host in hosts:
            count = scale * host.weight
            points.extend((hash64(f"{host.id}_{i}"), host.id, host) for i in range(count))
        points.sort(key=lambda p: (p[0], p[1]))
        return [p[0] for p in points], [p[2] for p in points]

    @property
    def ring(self) -> Ring:
        """The points' hashes and their owners (every endpoint's, available or not)."""
        return self._state[0]

    def _position(self, hashes: list[int], key: str | None) -> int:
        point = hash64(key) if key is not None else self._rng.getrandbits(64)
        index = bisect_left(hashes, point)
        return 0 if index == len(hashes) else index

    def _pick(self, now: float, key: str | None) -> Host:
        (hashes, owners), usable = self._state
        start = self._position(hashes, key)
        host = owners[start]
        if host in usable:
            return host
        return self._walk(owners, usable, start, None)

    def _pick_other(self, now: float, key: str | None, avoid: Host) -> Host:
        (hashes, owners), usable = self._state
        return self._walk(owners, usable, self._position(hashes, key), avoid)

    def _walk(
        self, owners: list[Host], usable: frozenset[Host], start: int, avoid: Host | None
    ) -> Host:
        """The owner of the first point after ``start`` that is usable and not ``avoid``."""
        count = len(owners)
        for step in range(1, count):
            host = owners[(start + step) % count]
            if host is not avoid and host in usable:
                return host
        pool = self.pool  # not empty: picks are made only from a non-empty pool
        return next((h for h in pool if h is not avoid), pool[0])
