"""What every balancer shares: the endpoint set, availability, panic mode and feedback hooks.

A balancer picks among a *pool* of hosts. The pool is rebuilt only when the endpoint set or
the set of unavailable endpoints (unhealthy or ejected) changes, never per pick, so each
strategy can precompute what it needs (a schedule, a ring, a lookup table) in ``_rebuild``.

Panic mode (Envoy): when the share of available endpoints falls below ``panic_threshold``,
the pool is every endpoint, available or not, so that the remaining healthy ones are not
crushed by all the traffic. With a threshold of 0 and nothing available, picks return None.

Concurrency: picks and feedback take no lock. Active counts are lists of in-flight markers
(``append``/``pop``/``len`` of a list are atomic, with or without a GIL: the free-threaded
build locks each list), so they never lose an update; an empty list is 56 bytes, a deque 760.
Changes to the endpoint set or availability must be serialised by the caller
(``UpstreamPolicies`` holds a lock for them); they build each strategy's new state aside and
publish it with a single attribute assignment, so a concurrent pick sees the old state or the
new one, never a mix. A strategy's ``_pick`` therefore reads its state attribute once. Shared
counters that only steer the choice (the round-robin position, peak EWMA's estimates) may lose
an update under a race, which skews a pick, never breaks one.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from functools import lru_cache
from math import floor
from typing import TYPE_CHECKING

from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.policy.config import LoadBalancerConfig

if TYPE_CHECKING:
    from meshspec_runtime.policy.call import Attempt


NO_IDS: frozenset[str] = frozenset()
"""The empty set of endpoint ids, shared: every ``frozenset()`` is a new 216-byte object."""


class Host:
    """A balancer's view of one endpoint, with the feedback it keeps about it.

    Survives endpoint-set updates as long as the endpoint id does, so active counts and
    latency estimates are not lost on a discovery refresh.
    """

    __slots__ = ("attempt", "endpoint", "ewma", "id", "inflight", "stamp", "weight")

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.id = endpoint.id
        self.weight = endpoint.weight
        self.inflight: list[None] = []
        """One marker per attempt started on this host and not finished yet."""
        self.ewma = 0.0
        """peak_ewma's latency estimate, seconds (0 until the first observation)."""
        self.stamp = 0.0
        """When ``ewma`` was last updated."""
        self.attempt: Attempt | None = None
        """The last ``Attempt`` step made for this host, reused by calls when it matches."""

    @property
    def active(self) -> int:
        """Attempts started on this host and not finished yet."""
        return len(self.inflight)

    def __repr__(self) -> str:
        return f"Host({self.id!r}, active={self.active})"


class Balancer(ABC):
    """Base of every strategy. Subclasses implement ``_rebuild`` and ``_pick``."""

    __slots__ = ("_all", "_panic_threshold", "_rng", "_unavailable", "config", "panicking", "pool")

    def __init__(
        self, config: LoadBalancerConfig, endpoints: Sequence[Endpoint], rng: random.Random
    ) -> None:
        self.config = config
        self._rng = rng
        self._panic_threshold = config.panic_threshold
        self._all: tuple[Host, ...] = ()
        self._unavailable = NO_IDS
        self.pool: tuple[Host, ...] = ()
        """The hosts picks are made from: the available ones, or all of them in panic."""
        self.panicking = False
        self.set_endpoints(endpoints)

    # -- the endpoint set -------------------------------------------------------------------

    @property
    def hosts(self) -> tuple[Host, ...]:
        """Every known host, in the order the endpoints were given."""
        return self._all

    def host(self, endpoint_id: str) -> Host | None:
        """Linear: no index by id is kept (lookups are rare, balancers many)."""
        for host in self._all:
            if host.id == endpoint_id:
                return host
        return None

    def set_endpoints(self, endpoints: Sequence[Endpoint]) -> None:
        """Replace the endpoint set; hosts whose id survives keep their feedback state."""
        known = {h.id: h for h in self._all} if self._all else {}
        hosts: dict[str, Host] = {}
        for endpoint in endpoints:
            if endpoint.id in hosts:
                raise ValueError(f"duplicate endpoint id {endpoint.id!r} in the endpoint set")
            host = known.get(endpoint.id)
            if host is None:
                host = Host(endpoint)
            else:
                host.endpoint = endpoint
                host.weight = endpoint.weight
                host.attempt = None
            hosts[endpoint.id] = host
        self._all = tuple(hosts.values())
        self._refresh(force=True)

    def set_unavailable(self, endpoint_ids: frozenset[str]) -> None:
        """Endpoints to skip (unhealthy or ejected) while enough others are available."""
        if endpoint_ids != self._unavailable:
            self._unavailable = endpoint_ids
            self._refresh(force=False)

    def _refresh(self, *, force: bool) -> None:
        unavailable = self._unavailable
        everyone = self._all
        available = (
            tuple(h for h in everyone if h.id not in unavailable) if unavailable else everyone
        )
        self.panicking = bool(everyone) and len(available) < self._panic_threshold * len(everyone)
        pool = everyone if self.panicking else available
        if force or pool != self.pool:
            if pool:  # the strategy's state first, then the pool that lets picks use it
                self._rebuild(pool)
            # an empty pool keeps the last state: a pick racing this update may still use it
            self.pool = pool

    # -- picking ----------------------------------------------------------------------------

    def pick(self, now: float, key: str | None = None, avoid: Host | None = None) -> Host | None:
        """The host for the next attempt, or None when the pool is empty.

        ``avoid`` (the host that just failed) is not returned when another host is in the pool.
        """
        pool = self.pool
        if not pool:
            return None
        host = self._pick(now, key)
        if host is avoid and len(pool) > 1:
            host = self._pick_other(now, key, host)
        return host

    @abstractmethod
    def _rebuild(self, pool: tuple[Host, ...]) -> None:
        """Precompute whatever picking needs for a non-empty pool and publish it with one
        attribute assignment; called when the pool changes (never per pick)."""

    @abstractmethod
    def _pick(self, now: float, key: str | None) -> Host:
        """A host, from the state the last ``_rebuild`` published."""

    def _pick_other(self, now: float, key: str | None, avoid: Host) -> Host:
        """A host other than ``avoid`` (the pool held at least two hosts)."""
        for _ in range(3):
            host = self._pick(now, key)
            if host is not avoid:
                return host
        others = [h for h in self.pool if h is not avoid] or [avoid]
        return others[int(self._rng.random() * len(others))]

    # -- feedback ---------------------------------------------------------------------------

    def on_start(self, host: Host) -> None:
        host.inflight.append(None)

    def on_finish(self, host: Host, latency: float, now: float) -> None:
        host.inflight.pop()

    def on_cancel(self, host: Host) -> None:
        """The attempt was abandoned: no latency to learn from."""
        host.inflight.pop()


@lru_cache(maxsize=64)
def extra_draws(choices: int) -> range:
    """What a strategy drawing ``choices`` candidates loops over after the first (shared)."""
    return range(choices - 1)


class UniformDraw:
    """A host of ``pool`` drawn uniformly, the draw :func:`sampler` makes from an equal-weight
    pool: 56 bytes where that closure takes over 300, for strategies that draw this way only
    off their fast path (a call through it costs a little more)."""

    __slots__ = ("draw", "pool")

    def __init__(self, pool: tuple[Host, ...], draw: Callable[[], float]) -> None:
        self.pool = pool
        self.draw = draw

    def __call__(self) -> Host:
        pool = self.pool
        return pool[floor(self.draw() * len(pool))]


def sampler(pool: tuple[Host, ...], rng: random.Random) -> Callable[[], Host]:
    """An O(1) random draw from ``pool``, proportional to weight (Vose's alias method)."""
    n = len(pool)
    draw = rng.random
    if len({h.weight for h in pool}) <= 1:
        return lambda: pool[floor(draw() * n)]  # floor: as int() for x >= 0, and cheaper
    total = sum(h.weight for h in pool)
    scaled = [h.weight * n / total for h in pool]
    alias = list(range(n))
    small = [i for i, s in enumerate(scaled) if s < 1.0]
    large = [i for i, s in enumerate(scaled) if s >= 1.0]
    while small and large:
        less, more = small.pop(), large.pop()
        alias[less] = more
        scaled[more] -= 1.0 - scaled[less]
        (small if scaled[more] < 1.0 else large).append(more)
    for i in small + large:  # floating-point leftovers are full columns
        scaled[i] = 1.0
    chosen = [(pool[i], scaled[i], pool[alias[i]]) for i in range(n)]

    def weighted() -> Host:
        x = draw() * n
        i = floor(x)
        host, keep, other = chosen[i]
        return host if x - i < keep else other

    return weighted
