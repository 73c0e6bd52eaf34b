"""Discovery's decisions as the mesh's events, per upstream the service serves."""

from __future__ import annotations

from typing import TYPE_CHECKING

from meshspec_runtime.discovery.cache import Signal, Update
from meshspec_runtime.events import (
    DiscoveryExpired,
    DiscoveryFailed,
    DiscoveryRecovered,
    EmptyAnswerIgnored,
    EndpointsDiscovered,
    GoneAnswerHeld,
    MeshEvent,
)

if TYPE_CHECKING:
    from meshspec_runtime.mesh import Mesh


class DiscoveryEvents:
    def __init__(self, mesh: Mesh, source: str) -> None:
        self._mesh = mesh
        self._source = source

    def report(self, service: str, update: Update, now: float) -> None:
        mesh = self._mesh
        watch = mesh.discovery
        caller = mesh.service
        events: list[MeshEvent] = []
        for signal in update.signals:
            if signal is Signal.FAILED:
                consecutive = watch.consecutive_failures(service) if watch is not None else 1
                events.append(
                    DiscoveryFailed(caller, service, now, self._source, update.reason, consecutive)
                )
            elif signal is Signal.EXPIRED:
                staleness = watch.staleness(service, now) if watch is not None else 0.0
                events.append(DiscoveryExpired(caller, service, now, self._source, staleness))
            elif signal is Signal.RECOVERED:
                events.append(DiscoveryRecovered(caller, service, now, self._source))
            elif signal is Signal.EMPTY_IGNORED:
                events.append(EmptyAnswerIgnored(caller, service, now, self._source))
            elif signal is Signal.GONE_HELD:
                hold = watch.discovery.settings.gone_hold if watch is not None else 0.0
                events.append(GoneAnswerHeld(caller, service, now, self._source, hold))
        if update.publish is not None:
            ids = tuple(endpoint.id for endpoint in update.publish)
            events.append(EndpointsDiscovered(caller, service, now, ids))
        for event in events:
            mesh.events.emit(event)
