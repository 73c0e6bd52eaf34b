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
