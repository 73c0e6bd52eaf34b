"""Maglev consistent hashing (Google's Maglev paper, weighted as in Envoy).

A lookup table of prime size ``maglev_table_size`` is filled by letting hosts take turns
claiming their next preferred free slot (each host's preferences are a permutation derived from
stable hashes of its id); a heavier host takes turns more often. A key maps to
``table[hash(key) % size]``: O(1) per pick, and a host change moves few keys. On a retry the key
is rehashed with the retry's salt, then the table is walked, to find a different host.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.policy.balancer.base import Balancer, Host
from meshspec_runtime.policy.balancer.hashing import hash64
from meshspec_runtime.policy.config import LoadBalancerConfig
from meshspec_runtime.policy.limits import is_prime


def build_table(pool: tuple[Host, ...], size: int) -> list[Host]:
    offsets = [hash64(f"offset:{h.id}") % size for h in pool]
    skips = [hash64(f"skip:{h.id}") % (size - 1) + 1 for h in pool]
    heaviest = max(h.weight for h in pool)
    shares = [h.weight / heaviest for h in pool]
    credits = [0.0] * len(pool)
    tried = [0] * len(pool)
    slots: list[Host | None] = [None] * size
    filled = 0
    while True:
        for i, host in enumerate(pool):
            credits[i] += shares[i]
            if credits[i] < 1.0:
                continue
            credits[i] -= 1.0
            offset, skip, j = offsets[i], skips[i], tried[i]
            slot = (offset + j * skip) % size
            while slots[slot] is not None:
                j += 1
                slot = (offset + j * skip) % size
            tried[i] = j + 1
            slots[slot] = host
            filled += 1
            if filled == size:
                return [s for s in slots if s is not None]


class Maglev(Balancer):
    def __init__(
        self, config: LoadBalancerConfig, endpoints: Sequence[Endpoint], rng: random.Random
    ) -> None:
        size = config.maglev_table_size
        if not is_prime(size):
            raise ValueError(f"load_balancer.maglev_table_size must be prime, got {size}")
        self._size = size
        super().__init__(config, endpoints, rng)

    def _rebuild(self, pool: tuple[Host, ...]) -> None:
        self._table = build_table(pool, self._size)

    def _index(self, key: str | None) -> int:
        point = hash64(key) if key is not None else self._rng.getrandbits(64)
        return point % self._size

    def _pick(self, now: float, key: str | None) -> Host:
        return self._table[self._index(key)]

    def _pick_other(self, now: float, key: str | None, avoid: Host) -> Host:
        table = self._table
        if key is not None:
            for salt in range(1, 4):
                host = table[hash64(f"{key}\x00{salt}") % self._size]
                if host is not avoid:
                    return host
        start = self._index(key)
        for step in range(1, self._size):
            host = table[(start + step) % self._size]
            if host is not avoid:
                return host
        return avoid  # unreachable: the pool holds another host, which owns a slot
