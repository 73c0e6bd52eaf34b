"""Discovery in the simulator: the runtime's own ``DiscoveryCache``, driven under SimPy.

Each subscriber (one caller instance's ``UpstreamPolicies`` for one upstream service, or an
outside client's) gets a :class:`~meshspec_runtime.discovery.cache.DiscoveryCache` and a
process that drives it the way ``meshspec_runtime.discovery.watch`` drives it against Consul:
ask the cache what to do, run the read, hand the answer back, and give what it publishes to
``set_endpoints``. Every rule (the last known good set, the empty answer, the failure breaker
and its probe delays, ``max_staleness``) is the cache's; this module only models the source:

- A versioned catalog per service, as Consul's health endpoint lists it: the ids of the
  instances whose checks pass, and an index bumped on every change. Every instance stays
  registered, so an empty list is "none passing" (the cache keeps what it had), never "gone".
- A change reaches each caller's view of the catalog ``discovery.propagation`` + any
  ``discovery-stale`` ``add`` + uniform(0, ``discovery.jitter``) after it happened. The lag is
  on the view rather than on each read's round trip, so a change made while the answer about
  the previous one travels is not pushed back by a second full delay.
- A read with an index waits until the caller's view moves past it, or ``wait`` seconds (a
  blocking query); one without answers at once.
- During a ``discovery-outage`` the agent is unreachable: reads fail at once, and blocking reads
  already waiting fail when it begins (the connection drops). Nothing tells the caches when it
  ends; they find out when their next read (a probe, once the breaker opened) succeeds.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.discovery.cache import (
    Answer,
    DiscoveryCache,
    Failed,
    Found,
    Query,
    Signal,
    Sleep,
    Update,
)
from meshspec_runtime.policy.upstream import UpstreamPolicies
from simpy.events import AnyOf, Event, Timeout

if TYPE_CHECKING:
    from meshspec.sim.world import World

Process = Generator[Event, Any, Any]

CLOCK_STEP = 1e-6
"""Seconds a driver sleeps at least: a real clock moves on between two readings, SimPy's would
not, and a wake-up exactly at the expiry time (which ``tick`` does not yet count as expired)
must not spin."""
OUTAGE = "discovery outage: the agent is unreachable"


@dataclass
class Subscriber:
    """One cache, the policies it publishes to, its view of the catalog, and what it said."""

    service: str
    policies: UpstreamPolicies
    cache: DiscoveryCache
    delays: random.Random
    """Draws of the jitter of this caller's view, apart from the cache's own random stream."""
    listed: tuple[Endpoint, ...]
    """The passing instances as this caller's view of the catalog has them."""
    changed: Event
    """Succeeds when the view next changes; replaced by a fresh event each time."""
    index: int = 1
    """The catalog index the view is at."""
    signals: list[tuple[float, Signal]] = field(default_factory=list)
    published: list[tuple[float, tuple[Endpoint, ...]]] = field(default_factory=list)
    reads: int = 0


class SimDiscovery:
    """Every subscriber's cache, the catalog they read, and the faults upon discovery."""

    def __init__(self, world: World, passing: dict[str, set[str]]) -> None:
        self.world = world
        self.passing = passing
        """Service -> ids of the instances whose checks pass (the health checks keep it)."""
        self.index = dict.fromkeys(passing, 1)
        """Service -> the catalog's index, bumped on every change."""
        self.outages: dict[str | None, int] = {}
        """Discovery outages in force: service (None: all) -> how many."""
        self.stale: dict[str | None, float] = {}
        """Extra lag in force: service (None: all) -> seconds."""
        self._outage_begun: dict[str | None, Event] = {}
        """Scope -> an event that succeeds when an outage of that scope begins."""
        self.settings = world.scenario.discovery.cache_settings()
        self.subscribers: list[Subscriber] = []
        self._by_service: dict[str, list[tuple[int, Subscriber]]] = {}
        """Service -> (subscriber number, subscriber), in number order."""
        self._initial: dict[str, tuple[Endpoint, ...]] = {}
        """Service -> the passing instances when the run began: the view of a caller built
        before the service's catalog first changes (see ``World.lazy``)."""

    def start(self) -> None:
        """A cache and its driver for every subscriber built so far (the outside clients'
        included, so this runs once the traffic has started); ``subscribe`` adds the rest."""
        world = self.world
        for service in world.services:
            self._initial[service] = self._listed(service)
        for service, group in world.subscribers.items():
            for number, policies in enumerate(group):
                if policies is not None:
                    world.env.process(self._follow(self._add(service, number, policies)))

    def subscribe(self, service: str, number: int, policies: UpstreamPolicies) -> None:
        """A caller built during the run: its cache starts now as it would have at the start
        (nothing about ``service`` changed since, or the caller would have been built then).
        Its first reads, which take no time, run at once, so the call that built it already
        sees what discovery lists; the driver goes on from the first step that waits."""
        subscriber = self._add(service, number, policies)
        self.world.env.process(self._follow(subscriber, self._prime(subscriber)))

    def _add(self, service: str, number: int, policies: UpstreamPolicies) -> Subscriber:
        world = self.world
        env = world.env
        key = f"{world.seed}/discovery/{service}/{number}"
        fallback = tuple(world.services[service].model.endpoints)
        cache = DiscoveryCache(fallback, env.now, self.settings, random.Random(f"{key}/cache"))
        subscriber = Subscriber(
            service,
            policies,
            cache,
            random.Random(f"{key}/delay"),
            self._initial[service],
            env.event(),
            1,
        )
        self.subscribers.append(subscriber)
        group = self._by_service.setdefault(service, [])
        bisect.insort(group, (number, subscriber), key=lambda entry: entry[0])
        return subscriber

    # --- what the health checks and the faults say ---------------------------------------------

    def changed(self, service: str) -> None:
        """The passing set of ``service`` changed: bump its index; each caller's view follows
        after its lag (callers not built yet are built first, with the view before)."""
        self.world.build_dormant_callers(service)
        self.index[service] += 1
        listed = self._listed(service)
        for _, subscriber in self._by_service.get(service, ()):
            self.world.env.process(
                self._propagate(subscriber, self.index[service], listed, self._lag(subscriber))
            )

    def outage(self, service: str | None, sign: int) -> None:
        """An outage about ``service`` (None: every service) begins (+1) or ends (-1)."""
        self.outages[service] = self.outages.get(service, 0) + sign
        if sign > 0:
            begun = self._outage_begun.pop(service, None)
            if begun is not None:
                begun.succeed()

    def add_stale(self, service: str | None, seconds: float) -> None:
        self.stale[service] = self.stale.get(service, 0.0) + seconds

    def unreachable(self, service: str) -> bool:
        return self.outages.get(service, 0) > 0 or self.outages.get(None, 0) > 0

    # --- the driver: discovery/watch.py's loop, on SimPy's clock -------------------------------

    def _follow(self, subscriber: Subscriber, action: Sleep | Query | None = None) -> Process:
        """``action``: what the cache already asked for now (see ``_prime``)."""
        env = self.world.env
        cache = subscriber.cache
        while True:
            now = env.now
            if action is None:
                self._apply(subscriber, cache.tick(now), now)
                action = cache.next(now)
            if isinstance(action, Sleep):
                wake = min(action.until, cache.expires_at())
                action = None
                yield Timeout(env, max(CLOCK_STEP, wake - now))
                continue
            subscriber.reads += 1
            query, action = action, None
            answer = yield from self._read(subscriber, query)
            self._apply(subscriber, cache.receive(env.now, answer), env.now)

    def _prime(self, subscriber: Subscriber) -> Sleep | Query:
        """The driver's steps until the first that waits (a sleep or a blocking read), run
        now: the same calls to the cache ``_follow`` makes; that step is returned."""
        now = self.world.env.now
        cache = subscriber.cache
        while True:
            self._apply(subscriber, cache.tick(now), now)
            action = cache.next(now)
            if isinstance(action, Sleep):
                return action
            reader = self._read(subscriber, action)
            try:
                next(reader)
            except StopIteration as answered:
                subscriber.reads += 1
                self._apply(subscriber, cache.receive(now, answered.value), now)
                continue
            reader.close()  # it would wait: the driver makes this read
            return action

    def _apply(self, subscriber: Subscriber, update: Update, now: float) -> None:
        subscriber.signals.extend((now, signal) for signal in update.signals)
        if update.publish is not None:
            subscriber.published.append((now, update.publish))
            subscriber.policies.set_endpoints(update.publish)

    # --- the simulated source ------------------------------------------------------------------

    def _read(self, subscriber: Subscriber, query: Query) -> Generator[Event, Any, Answer]:
        """One read of the caller's view, as Consul's health endpoint answers it."""
        if self.unreachable(subscriber.service):
            return Failed(OUTAGE)
        if query.index is not None and query.index >= subscriber.index:
            env = self.world.env
            begun = [self._outage_event(subscriber.service), self._outage_event(None)]
            yield AnyOf(env, [subscriber.changed, Timeout(env, query.wait), *begun])
            if any(event.triggered for event in begun):
                return Failed(OUTAGE)
        return Found(subscriber.listed, index=subscriber.index)

    def _propagate(
        self, subscriber: Subscriber, index: int, listed: tuple[Endpoint, ...], lag: float
    ) -> Process:
        yield Timeout(self.world.env, lag)
        if index > subscriber.index:  # a later change that arrived sooner (jitter) stays
            subscriber.index, subscriber.listed = index, listed
            woken, subscriber.changed = subscriber.changed, self.world.env.event()
            woken.succeed()

    def _outage_event(self, scope: str | None) -> Event:
        begun = self._outage_begun.get(scope)
        if begun is None:
            begun = self._outage_begun[scope] = self.world.env.event()
        return begun

    def _listed(self, service: str) -> tuple[Endpoint, ...]:
        passing = self.passing[service]
        instances = self.world.services[service].instances
        return tuple(i.endpoint for i in instances if i.endpoint.id in passing)

    def _lag(self, subscriber: Subscriber) -> float:
        discovery = self.world.scenario.discovery
        service = subscriber.service
        lag = discovery.propagation + self.stale.get(service, 0.0) + self.stale.get(None, 0.0)
        if discovery.jitter:
            lag += subscriber.delays.uniform(0, discovery.jitter)
        return lag

    # --- what the caches did -------------------------------------------------------------------

    def of(self, service: str) -> Iterable[Subscriber]:
        return (subscriber for _, subscriber in self._by_service.get(service, ()))
