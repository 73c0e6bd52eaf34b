"""Ring hash (ketama-style consistent hashing).

Each host owns ``scale x weight`` points on a 64-bit ring, ``scale`` being the largest power of
two that keeps the ring within ``ring_size`` points (at least 1); a key goes to the owner of the
first point at or after the key's hash. A host's points depend only on its id, weight and the
scale, and the scale only changes when the total weight crosses a power of two, so adding or
removing a host moves exactly the keys won or lost by that host's points, as in ketama. A call
without a key gets a random position. On a retry the walk continues to the next point owned by
a different host.
"""

from __future__ import annotations

from bisect import bisect_left

from meshspec_runtime.policy.balancer.base import Balancer, Host
from meshspec_runtime.policy.balancer.hashing import hash64


class RingHash(Balancer):
    def _rebuild(self, pool: tuple[Host, ...]) -> None:
        total = sum(h.weight for h in pool)
        scale = 1 << max(0, (self.config.ring_size // total).bit_length() - 1)
        points: list[tuple[int, str, Host]] = []
        for host in pool:
            count = scale * host.weight
            points.extend((hash64(f"{host.id}_{i}"), host.id, host) for i in range(count))
        points.sort(key=lambda p: (p[0], p[1]))
        self._ring = ([p[0] for p in points], [p[2] for p in points])

    def _position(self, hashes: list[int], key: str | None) -> int:
        point = hash64(key) if key is not None else self._rng.getrandbits(64)
        index = bisect_left(hashes, point)
        return 0 if index == len(hashes) else index

    def _pick(self, now: float, key: str | None) -> Host:
        hashes, owners = self._ring
        return owners[self._position(hashes, key)]

    def _pick_other(self, now: float, key: str | None, avoid: Host) -> Host:
        hashes, owners = self._ring
        start = self._position(hashes, key)
        for step in range(1, len(owners)):
            host = owners[(start + step) % len(owners)]
            if host is not avoid:
                return host
        return avoid  # unreachable: the pool holds another host, which owns a point
