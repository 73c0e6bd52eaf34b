"""Maglev consistent hashing (Google's Maglev paper, weighted as in Envoy).

A lookup table of prime size ``maglev_table_size`` is filled by letting hosts take turns
claiming their next preferred free slot (each host's preferences are a permutation derived from
stable hashes of its id); a heavier host takes turns more often. A key maps to
``table[hash(key) % size]``: O(1) per pick, and a host change moves few keys.

The table holds every endpoint and is built only when the endpoint set changes. Filling it
costs tens of milliseconds for the default size, too much for each health change or ejection
(which happen under the upstream's lock, while requests wait), so availability is applied at
pick time instead: when a key's slot belongs to an unavailable host, the walk goes on to the
following slots until one belongs to an available host. A key whose host is available keeps it
whatever happens to the others, and the keys of an unavailable host spread over the rest in
proportion to their slots (each slot's owner is a pseudo-random, weighted draw). On a retry the
key is rehashed with the retry's salt, then the table is walked, to find a different host.
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
    _state: tuple[list[Host], frozenset[Host]]
    """The table and the hosts picks may return (the pool), published together."""

    def __init__(
        self, config: LoadBalancerConfig, endpoints: Sequence[Endpoint], rng: random.Random
    ) -> None:
        size = config.maglev_table_size
        if not is_prime(size):
            raise ValueError(f"load_balancer.maglev_table_size must be prime, got {size}")
        self._size = size
        self._built_for: tuple[Host, ...] | None = None
        self.table_builds = 0
        """How many times the table was filled (once per endpoint set)."""
        super().__init__(config, endpoints, rng)

    def _rebuild(self, pool: tuple[Host, ...]) -> None:
        everyone = self.hosts
        if self._built_for is not everyone:  # a new endpoint set (hosts, weights)
            table = build_table(everyone, self._size)
            self._built_for = everyone
            self.table_builds += 1
        else:
            table = self._state[0]
        # one assignment: a pick sees the old table and hosts, or the new ones
        self._state = (table, frozenset(pool))

    @property
    def table(self) -> list[Host]:
        """The lookup table (every endpoint's slots, available or not)."""
        return self._state[0]

    def _index(self, key: str | None) -> int:
        point = hash64(key) if key is not None else self._rng.getrandbits(64)
        return point % self._size

    def _pick(self, now: float, key: str | None) -> Host:
        table, usable = self._state
        index = self._index(key)
        host = table[index]
        if host in usable:
            return host
        return self._walk(table, usable, index, None)

    def _pick_other(self, now: float, key: str | None, avoid: Host) -> Host:
        table, usable = self._state
        if key is not None:
            for salt in range(1, 4):
                host = table[hash64(f"{key}\x00{salt}") % self._size]
                if host is not avoid and host in usable:
                    return host
        return self._walk(table, usable, self._index(key), avoid)

    def _walk(
        self, table: list[Host], usable: frozenset[Host], start: int, avoid: Host | None
    ) -> Host:
        """The owner of the first slot after ``start`` that is usable and not ``avoid``."""
        size = self._size
        for step in range(1, size):
            host = table[(start + step) % size]
            if host is not avoid and host in usable:
                return host
        # a host far lighter than the heaviest may own no slot at all in a small table
        pool = self.pool  # not empty: picks are made only from a non-empty pool
        return next((h for h in pool if h is not avoid), pool[0])
