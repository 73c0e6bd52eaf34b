"""Drive one :class:`DiscoveryCache` per upstream service in a daemon thread.

The thread owns its cache and its own client of the source: it asks the cache what to do,
performs the read (a Consul blocking query may hold it for ``wait`` seconds), and hands the
answer back. What the cache decides goes to ``publish(service, endpoints)`` and
``report(service, update, now)``; a pick never waits for any of it. ``close`` stops the
threads without waiting out a blocking read (they are daemons and exit when it returns).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.discovery.cache import DiscoveryCache, Signal, Sleep, Update
from meshspec_runtime.discovery.source import Discovery, Source
from meshspec_runtime.events import logger

Publish = Callable[[str, tuple[Endpoint, ...]], None]
Report = Callable[[str, Update, float], None]


@dataclass
class _Watched:
    cache: DiscoveryCache
    stop: threading.Event
    thread: threading.Thread
    failures_total: int = 0


class DiscoveryWatch:
    """The mesh's discovery: one cache and thread per upstream service."""

    def __init__(
        self,
        discovery: Discovery,
        *,
        publish: Publish,
        report: Report,
        clock: Callable[[], float],
        rng: random.Random | None = None,
    ) -> None:
        self.discovery = discovery
        self._publish = publish
        self._report = report
        self._clock = clock
        self._rng = rng or random.Random()
        self._watched: dict[str, _Watched] = {}
        self._lock = threading.Lock()
        self._closed = False

    # -- what the mesh asks -----------------------------------------------------------------

    def follow(self, services: Mapping[str, tuple[Endpoint, ...]]) -> None:
        """Watch exactly ``services`` (service -> the bundle's list, the fallback): start the
        new ones, stop the ones no longer listed, update the others' fallback."""
        with self._lock:
            if self._closed:
                return
            for service in list(self._watched):
                if service not in services:
                    self._watched.pop(service).stop.set()
            for service, fallback in services.items():
                watched = self._watched.get(service)
                if watched is not None:
                    watched.cache.fallback = tuple(fallback)
                    continue
                cache = DiscoveryCache(
                    tuple(fallback),
                    self._clock(),
                    self.discovery.settings,
                    random.Random(self._rng.random()),
                )
                stop = threading.Event()
                thread = threading.Thread(
                    target=self._run,
                    args=(service, cache, stop),
                    name=f"meshspec-discovery-{service}",
                    daemon=True,
                )
                self._watched[service] = _Watched(cache, stop, thread)
                thread.start()

    def endpoints(self, service: str) -> tuple[Endpoint, ...] | None:
        """The set in force for ``service`` (None when it is not watched)."""
        watched = self._watched.get(service)
        return None if watched is None else watched.cache.endpoints

    def staleness(self, service: str, now: float) -> float:
        watched = self._watched.get(service)
        return 0.0 if watched is None else watched.cache.staleness(now)

    def answers(self, service: str) -> int:
        """Good answers the source gave about ``service`` so far."""
        watched = self._watched.get(service)
        return 0 if watched is None else watched.cache.answers

    def consecutive_failures(self, service: str) -> int:
        watched = self._watched.get(service)
        return 0 if watched is None else watched.cache.failures

    def failures_total(self, service: str) -> int:
        watched = self._watched.get(service)
        return 0 if watched is None else watched.failures_total

    def close(self) -> None:
        with self._lock:
            self._closed = True
            watched, self._watched = list(self._watched.values()), {}
        for item in watched:
            item.stop.set()

    # -- the threads ------------------------------------------------------------------------

    def _run(self, service: str, cache: DiscoveryCache, stop: threading.Event) -> None:
        try:
            source = self.discovery.open()
        except Exception as error:  # a missing extra: said once, loudly; the bundle stays
            logger.error("meshspec discovery for %s cannot start: %s", service, error)
            return
        try:
            self._loop(service, cache, stop, source)
        finally:
            source.close()

    def _loop(
        self, service: str, cache: DiscoveryCache, stop: threading.Event, source: Source
    ) -> None:
        clock = self._clock
        while not stop.is_set():
            now = clock()
            self._apply(service, cache.tick(now), now)
            action = cache.next(now)
            if isinstance(action, Sleep):
                stop.wait(max(0.0, min(action.until, cache.expires_at()) - now))
                continue
            answer = source.query(service, action)
            if stop.is_set():
                return  # stopped while the read was out: this service is no longer ours
            now = clock()
            self._apply(service, cache.receive(now, answer), now)

    def _apply(self, service: str, update: Update, now: float) -> None:
        if Signal.FAILED in update.signals:
            watched = self._watched.get(service)
            if watched is not None:
                watched.failures_total += 1
        if update.publish is not None:
            self._publish(service, update.publish)
        if update.signals or update.publish is not None:
            self._report(service, update, now)
