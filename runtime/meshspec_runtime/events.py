"""What a ``Mesh`` tells the application: policy decisions worth knowing about, as events.

``mesh.on(EventType, handler)`` subscribes; every event is also logged to the
``meshspec_runtime`` logger with structured ``extra`` fields (``mesh_event``, ``mesh_caller``,
``mesh_upstream`` and the event's own fields, each prefixed ``mesh_``), so a JSON log formatter
picks them up without meshspec imposing a logging framework. A handler that raises is logged
and skipped: an observer never breaks a call.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from meshspec_runtime.policy.breaker import BreakerState
from meshspec_runtime.policy.call import FailReason

logger = logging.getLogger("meshspec_runtime")


@dataclass(frozen=True, slots=True)
class MeshEvent:
    """Base of every event: which caller and upstream it concerns, and when (monotonic)."""

    name: ClassVar[str] = "event"
    level: ClassVar[int] = logging.INFO
    caller: str
    upstream: str
    at: float

    def describe(self) -> str:
        return f"{self.caller} -> {self.upstream}: {self.name}"


@dataclass(frozen=True, slots=True)
class BreakerTransition(MeshEvent):
    name: ClassVar[str] = "breaker_transition"
    level: ClassVar[int] = logging.WARNING
    old: BreakerState
    new: BreakerState

    def describe(self) -> str:
        return f"{self.caller} -> {self.upstream}: circuit breaker {self.old} -> {self.new}"


@dataclass(frozen=True, slots=True)
class EndpointsEjected(MeshEvent):
    name: ClassVar[str] = "endpoints_ejected"
    level: ClassVar[int] = logging.WARNING
    endpoints: tuple[str, ...]

    def describe(self) -> str:
        listed = ", ".join(self.endpoints)
        return f"{self.caller} -> {self.upstream}: outlier detection ejected {listed}"


@dataclass(frozen=True, slots=True)
class EndpointsReturned(MeshEvent):
    name: ClassVar[str] = "endpoints_returned"
    endpoints: tuple[str, ...]

    def describe(self) -> str:
        listed = ", ".join(self.endpoints)
        return f"{self.caller} -> {self.upstream}: back from ejection: {listed}"


@dataclass(frozen=True, slots=True)
class CallRefused(MeshEvent):
    """A call the policies ended without an answer for a reason of their own: the breaker is
    open, the throttle or the concurrency limit refused it, no endpoint is available, the
    retry budget refused a retry, or the deadline passed."""

    name: ClassVar[str] = "call_refused"
    level: ClassVar[int] = logging.DEBUG
    reason: FailReason

    def describe(self) -> str:
        return f"{self.caller} -> {self.upstream}: call refused: {self.reason}"


@dataclass(frozen=True, slots=True)
class DiscoveryFailed(MeshEvent):
    """A read of the discovery source failed; calls go on with the last known good set.
    ``consecutive``: failures in a row (at the breaker's threshold the source is probed with
    backoff)."""

    name: ClassVar[str] = "discovery_failed"
    level: ClassVar[int] = logging.WARNING
    source: str
    reason: str
    consecutive: int

    def describe(self) -> str:
        return (
            f"{self.caller} -> {self.upstream}: discovery from {self.source} failed "
            f"({self.consecutive} in a row), keeping the last known endpoints: {self.reason}"
        )


@dataclass(frozen=True, slots=True)
class DiscoveryExpired(MeshEvent):
    """The last good discovery answer is older than ``max_staleness``: the bundle's own
    endpoint list is in force until the source answers again."""

    name: ClassVar[str] = "discovery_expired"
    level: ClassVar[int] = logging.ERROR
    source: str
    staleness: float

    def describe(self) -> str:
        return (
            f"{self.caller} -> {self.upstream}: no good answer from {self.source} for "
            f"{self.staleness:.1f}s: back to the bundle's endpoint list"
        )


@dataclass(frozen=True, slots=True)
class DiscoveryRecovered(MeshEvent):
    name: ClassVar[str] = "discovery_recovered"
    level: ClassVar[int] = logging.WARNING
    source: str

    def describe(self) -> str:
        return f"{self.caller} -> {self.upstream}: discovery from {self.source} answers again"


@dataclass(frozen=True, slots=True)
class EndpointsDiscovered(MeshEvent):
    """Discovery published a new endpoint set (an instance came, went, or changed health)."""

    name: ClassVar[str] = "endpoints_discovered"
    level: ClassVar[int] = logging.DEBUG
    endpoints: tuple[str, ...]

    def describe(self) -> str:
        listed = ", ".join(self.endpoints) or "none"
        return f"{self.caller} -> {self.upstream}: endpoints now {listed}"


@dataclass(frozen=True, slots=True)
class GoneAnswerHeld(MeshEvent):
    """The source says the service has no instance at all: the last known good set stays until
    it has said so for ``DiscoverySettings.gone_hold`` seconds (a restarted agent says it for
    a moment), then the set is emptied."""

    name: ClassVar[str] = "gone_answer_held"
    level: ClassVar[int] = logging.WARNING
    source: str
    hold: float

    def describe(self) -> str:
        return (
            f"{self.caller} -> {self.upstream}: {self.source} lists no instance at all; "
            f"keeping the last known endpoints unless it still says so after {self.hold:g}s"
        )


@dataclass(frozen=True, slots=True)
class EmptyAnswerIgnored(MeshEvent):
    """The source lists the service's instances but none passes its checks: the last known
    good set stays (only a source saying the service is gone empties it)."""

    name: ClassVar[str] = "empty_answer_ignored"
    level: ClassVar[int] = logging.WARNING
    source: str

    def describe(self) -> str:
        return (
            f"{self.caller} -> {self.upstream}: {self.source} lists no passing instance; "
            "keeping the last known endpoints"
        )


@dataclass(frozen=True, slots=True)
class ReloadApplied(MeshEvent):
    """A newly published bundle is in force. ``upstream`` is empty: it concerns the mesh.
    ``kept``: upstreams whose policy did not change (their state carried over); ``renewed``:
    upstreams with fresh policy state; ``added``/``removed``: upstreams that came or went."""

    name: ClassVar[str] = "reload_applied"
    old_version: str
    new_version: str
    kept: tuple[str, ...]
    renewed: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]

    def describe(self) -> str:
        return (
            f"{self.caller}: bundle {self.old_version} -> {self.new_version} "
            f"(kept {len(self.kept)}, renewed {len(self.renewed)}, added {len(self.added)}, "
            f"removed {len(self.removed)} upstreams)"
        )


@dataclass(frozen=True, slots=True)
class ReloadRefused(MeshEvent):
    """A bundle was refused; the one in force (``version``) stays."""

    name: ClassVar[str] = "reload_refused"
    level: ClassVar[int] = logging.ERROR
    version: str
    reason: str

    def describe(self) -> str:
        return f"{self.caller}: reload refused, keeping bundle {self.version}: {self.reason}"


@dataclass(frozen=True, slots=True)
class InstanceRegistered(MeshEvent):
    """This instance (``instance_id``) is registered with the local Consul agent."""

    name: ClassVar[str] = "instance_registered"
    instance_id: str

    def describe(self) -> str:
        return f"{self.caller}: registered instance {self.instance_id} with Consul"


@dataclass(frozen=True, slots=True)
class RegistrationFailed(MeshEvent):
    """Registering (or keeping registered) this instance failed; it is retried."""

    name: ClassVar[str] = "registration_failed"
    level: ClassVar[int] = logging.WARNING
    instance_id: str
    reason: str

    def describe(self) -> str:
        return f"{self.caller}: registering {self.instance_id} failed (retrying): {self.reason}"


@dataclass(frozen=True, slots=True)
class InstanceDeregistered(MeshEvent):
    name: ClassVar[str] = "instance_deregistered"
    instance_id: str

    def describe(self) -> str:
        return f"{self.caller}: deregistered instance {self.instance_id} from Consul"


@dataclass(frozen=True, slots=True)
class BudgetSharing(MeshEvent):
    """A retry budget of ``scope: service`` changed how it decides: ``BudgetFellBack`` (the
    store is unreachable: it decides alone with this process's share) or ``BudgetShared``
    (the store answers: it shares the service's budget). Subscribe to this type for both."""

    name: ClassVar[str] = "budget_sharing"
    members: int
    """Replicas sharing the budget, as of the store's last answer."""


@dataclass(frozen=True, slots=True)
class BudgetFellBack(BudgetSharing):
    name: ClassVar[str] = "budget_fell_back"
    level: ClassVar[int] = logging.WARNING

    def describe(self) -> str:
        return (
            f"{self.caller} -> {self.upstream}: retry budget store unreachable; deciding "
            f"locally with 1/{self.members} of the budget"
        )


@dataclass(frozen=True, slots=True)
class BudgetShared(BudgetSharing):
    name: ClassVar[str] = "budget_shared"

    def describe(self) -> str:
        return (
            f"{self.caller} -> {self.upstream}: retry budget shared by {self.members} "
            f"replica{'s' if self.members != 1 else ''}"
        )


E = TypeVar("E", bound=MeshEvent)
Handler = Callable[[E], object]


class EventBus:
    """Handlers by event type; ``emit`` logs the event, then runs the handlers subscribed to
    its type or a base of it."""

    def __init__(self) -> None:
        self._handlers: dict[type[MeshEvent], list[Callable[[MeshEvent], object]]] = {}
        self._lock = threading.Lock()

    def subscribe(self, event_type: type[E], handler: Handler[E]) -> None:
        if not (isinstance(event_type, type) and issubclass(event_type, MeshEvent)):
            raise TypeError(f"mesh.on() takes a MeshEvent type, not {event_type!r}")
        with self._lock:
            handlers = dict(self._handlers)
            handlers[event_type] = [*handlers.get(event_type, ()), handler]  # type: ignore[list-item]
            self._handlers = handlers  # copied on write: emit reads without the lock

    def emit(self, event: MeshEvent) -> None:
        if logger.isEnabledFor(event.level):
            logger.log(event.level, event.describe(), extra=_extra(event))
        handlers = self._handlers
        if not handlers:
            return
        for cls in type(event).__mro__:
            for handler in handlers.get(cls, ()):
                try:
                    handler(event)
                except Exception:
                    logger.exception("meshspec event handler %r failed on %s", handler, event.name)


def _extra(event: MeshEvent) -> dict[str, object]:
    fields = {
        f"mesh_{field.name}": getattr(event, field.name) for field in dataclasses.fields(event)
    }
    fields["mesh_event"] = event.name
    return fields
