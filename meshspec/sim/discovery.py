"""Discovery in the simulator: the runtime's own ``DiscoveryCache``, driven under SimPy.

Each subscriber (one caller instance's ``UpstreamPolicies`` for one upstream service, or an
outside client's) gets a :class:`~meshspec_runtime.discovery.cache.DiscoveryCache` and a
process that drives it the way ``meshspec_runtime.discovery.watch`` drives it against Consul:
ask the cache what to do, run the read against a simulated catalog, hand the answer back, and
give what it publishes to ``set_endpoints``. Every rule (the last known good set, the empty
answer, the failure breaker and its probe delays, ``max_staleness``) is the cache's; this module
only models the source:

- A versioned catalog per service, as Consul's health endpoint lists it: the ids of the
  instances whose checks pass, and an index bumped on every change. A read with an index waits
  until the catalog moves past it, or ``wait`` seconds (a blocking query); one without answers
  at once. Every instance stays registered, so an empty list is "none passing" (the cache keeps
  what it had), never "gone".
- Answers reach the caller ``discovery.propagation`` + any ``discovery-stale`` ``add`` +
  uniform(0, ``discovery.jitter``) after the catalog gave them.
- During a ``discovery-outage`` the agent is unreachable: reads fail at once, and blocking reads
  already waiting fail when it begins (the connection drops). Nothing tells the caches when it
  ends; they find out when their next read (a probe, once the breaker opened) succeeds.
"""

from __future__ import annotations

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
class Catalog:
    """One service in the simulated catalog."""

    passing: set[str]
    """Ids of the instances whose health checks pass (shared with the health checks)."""
    changed: Event
    """Succeeds at the next change; replaced by a fresh event each time."""
    index: int = 1


@dataclass
class Subscriber:
    """One cache and the policies it publishes to, with what it said (for tests, reports)."""

    service: str
    policies: UpstreamPolicies
    cache: DiscoveryCache
    delays: random.Random
    """Draws of the per-answer jitter, apart from the cache's own random stream."""
    signals: list[tuple[float, Signal]] = field(default_factory=list)
    published: list[tuple[float, tuple[Endpoint, ...]]] = field(default_factory=list)
    reads: int = 0


class SimDiscovery:
    """Every subscriber's cache, the catalog they read, and the faults upon discovery."""

    def __init__(self, world: World, passing: dict[str, set[str]]) -> None:
        self.world = world
        env = world.env
        self.catalogs = {name: Catalog(ids, env.event()) for name, ids in passing.items()}
        self.outages: dict[str | None, int] = {}
        """Discovery outages in force: service (None: all) -> how many."""
        self.stale: dict[str | None, float] = {}
        """Extra delay of answers in force: service (None: all) -> seconds."""
        self._outage_begun: dict[str | None, Event] = {}
        """Scope -> an event that succeeds when an outage of that scope begins."""
        self.settings = world.scenario.discovery.cache_settings()
        self.subscribers: list[Subscriber] = []

    def start(self) -> None:
        """A cache and its driver for every subscriber (the outside clients' included, so this
        runs once the traffic has started)."""
        world = self.world
        for service, group in world.subscribers.items():
            fallback = tuple(world.services[service].model.endpoints)
            for number, policies in enumerate(group):
                key = f"{world.seed}/discovery/{service}/{number}"
                cache = DiscoveryCache(
                    fallback, world.env.now, self.settings, random.Random(f"{key}/cache")
                )
                subscriber = Subscriber(service, policies, cache, random.Random(f"{key}/delay"))
                self.subscribers.append(subscriber)
                world.env.process(self._follow(subscriber))

    # --- what the health checks and the faults say ---------------------------------------------

    def changed(self, service: str) -> None:
        """The catalog's passing set of ``service`` changed: bump its index, wake its readers."""
        catalog = self.catalogs[service]
        catalog.index += 1
        woken, catalog.changed = catalog.changed, self.world.env.event()
        woken.succeed()

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

    def _follow(self, subscriber: Subscriber) -> Process:
        env = self.world.env
        cache = subscriber.cache
        while True:
            now = env.now
            self._apply(subscriber, cache.tick(now), now)
            action = cache.next(now)
            if isinstance(action, Sleep):
                wake = min(action.until, cache.expires_at())
                yield Timeout(env, max(CLOCK_STEP, wake - now))
                continue
            subscriber.reads += 1
            answer = yield from self._read(subscriber, action)
            self._apply(subscriber, cache.receive(env.now, answer), env.now)

    def _apply(self, subscriber: Subscriber, update: Update, now: float) -> None:
        subscriber.signals.extend((now, signal) for signal in update.signals)
        if update.publish is not None:
            subscriber.published.append((now, update.publish))
            subscriber.policies.set_endpoints(update.publish)

    # --- the simulated source ------------------------------------------------------------------

    def _read(self, subscriber: Subscriber, query: Query) -> Generator[Event, Any, Answer]:
        """One read of the catalog, as Consul's health endpoint answers it."""
        env = self.world.env
        service = subscriber.service
        if self.unreachable(service):
            return Failed(OUTAGE)
        catalog = self.catalogs[service]
        if query.index is not None and query.index >= catalog.index:
            begun = [self._outage_event(service), self._outage_event(None)]
            yield AnyOf(env, [catalog.changed, Timeout(env, query.wait), *begun])
            if any(event.triggered for event in begun):
                return Failed(OUTAGE)
        answer = Found(self._passing(service), index=catalog.index)
        yield Timeout(env, self._delay(subscriber))
        return answer

    def _outage_event(self, scope: str | None) -> Event:
        begun = self._outage_begun.get(scope)
        if begun is None:
            begun = self._outage_begun[scope] = self.world.env.event()
        return begun

    def _passing(self, service: str) -> tuple[Endpoint, ...]:
        passing = self.catalogs[service].passing
        instances = self.world.services[service].instances
        return tuple(i.endpoint for i in instances if i.endpoint.id in passing)

    def _delay(self, subscriber: Subscriber) -> float:
        discovery = self.world.scenario.discovery
        service = subscriber.service
        delay = discovery.propagation + self.stale.get(service, 0.0) + self.stale.get(None, 0.0)
        if discovery.jitter:
            delay += subscriber.delays.uniform(0, discovery.jitter)
        return delay

    # --- what the caches did -------------------------------------------------------------------

    def of(self, service: str) -> Iterable[Subscriber]:
        return (s for s in self.subscribers if s.service == service)
