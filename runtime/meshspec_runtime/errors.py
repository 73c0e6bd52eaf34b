"""Which outcome an exception stands for: one table for every client library.

A *rule* maps an exception type to an :class:`OutcomeKind`, or to a function that reads the
exception and returns an :class:`Outcome` (``None``: "not mine", the next rule decides). For an
exception, the rules of the classes in its MRO are tried in MRO order, so the most specific
type wins (httpx's ``ConnectTimeout`` before its ``TimeoutException``) and a function rule can
fall back to a more general one, as Finagle's classifiers do with ``applyOrElse``.

Libraries are registered lazily: their rules live in ``meshspec_runtime.integrations.<lib>``
and are loaded the first time an exception is classified while the library is imported (an
exception of httpx's cannot exist before httpx is). Nothing here imports a client library.

Users add rules for their own exceptions with :func:`register_error`; they take precedence
over the built-in ones for the same type and apply to its subclasses.
"""

from __future__ import annotations

import importlib
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

from meshspec_runtime.policy.fastbuild import builder
from meshspec_runtime.policy.outcome import Outcome, OutcomeKind

RuleFunction = Callable[[BaseException, float], Outcome | None]
Rule = OutcomeKind | RuleFunction

outcome: Callable[[OutcomeKind, float, int | None, str | None], Outcome] = builder(
    Outcome, "kind", "latency", "status", "grpc_status"
)
"""``Outcome(...)`` without the frozen dataclass ``__init__`` (3x cheaper on the hot path)."""

LIBRARY_RULES: Final[Mapping[str, str]] = {
    "urllib.error": "meshspec_runtime.integrations.urllib",
    "httpx": "meshspec_runtime.integrations.httpx",
    "requests": "meshspec_runtime.integrations.requests",
    "urllib3": "meshspec_runtime.integrations.requests",
    "aiohttp": "meshspec_runtime.integrations.aiohttp",
    "grpc": "meshspec_runtime.integrations.grpc",
}
"""Library module -> the integration module whose ``error_rules()`` classifies its errors."""

_MAX_CAUSES: Final = 8


class ErrorTable:
    """Exception type -> rule, resolved once per concrete type and cached."""

    def __init__(
        self, builtin: Mapping[type[BaseException], Rule], last_resort: RuleFunction
    ) -> None:
        self._builtin = dict(builtin)
        self._last_resort = last_resort
        self._library: dict[type[BaseException], Rule] = {}
        self._user: dict[type[BaseException], Rule] = {}
        self._pending = dict(LIBRARY_RULES)
        self._resolved: dict[type[BaseException], tuple[Rule, ...]] = {}
        self._lock = threading.Lock()

    def register(self, error_type: type[BaseException], rule: Rule) -> None:
        """Classify ``error_type`` (and its subclasses) with ``rule``."""
        if not (isinstance(error_type, type) and issubclass(error_type, BaseException)):
            raise TypeError(f"register_error() takes an exception type, not {error_type!r}")
        if not (isinstance(rule, OutcomeKind) or callable(rule)):
            raise TypeError(f"a rule is an OutcomeKind or a function, not {rule!r}")
        with self._lock:
            self._user[error_type] = rule
            self._resolved = {}

    def classify(self, error: BaseException, latency: float) -> Outcome:
        """The outcome ``error`` stands for; ``error`` when no rule knows it."""
        made = self.known(error, latency)
        if made is None:
            made = self._last_resort(error, latency)
        return made if made is not None else outcome(OutcomeKind.ERROR, latency, None, None)

    def known(self, error: BaseException, latency: float) -> Outcome | None:
        """What the rules registered for ``error``'s classes say, without the last resort."""
        rules = self._resolved.get(type(error))
        if rules is None:
            rules = self._resolve(type(error))
        for rule in rules:
            if type(rule) is OutcomeKind:
                return outcome(rule, latency, None, None)
            made = rule(error, latency)  # type: ignore[operator]  # a RuleFunction
            if made is not None:
                return made
        return None

    def _resolve(self, error_type: type[BaseException]) -> tuple[Rule, ...]:
        with self._lock:
            self._load_libraries()
            rules: list[Rule] = []
            for cls in error_type.__mro__:
                for table in (self._user, self._library, self._builtin):
                    rule = table.get(cls)
                    if rule is not None:
                        rules.append(rule)
            resolved = tuple(rules)
            self._resolved[error_type] = resolved
            return resolved

    def _load_libraries(self) -> None:
        """Load the rules of every registered library that has been imported since last time."""
        for library, home in list(self._pending.items()):
            if library in sys.modules:
                del self._pending[library]
                rules: Callable[[], Mapping[type[BaseException], Rule]]
                rules = importlib.import_module(home).error_rules
                self._library.update(rules())


def status_of(value: object) -> int | None:
    """The integer ``status_code`` or ``status`` attribute of a response, else None."""
    status = getattr(value, "status_code", None)
    if status is None:
        status = getattr(value, "status", None)
    if type(status) is int:
        return status
    if isinstance(status, int) and not isinstance(status, bool):  # http.HTTPStatus
        return int(status)
    return None


def answer(latency: float, status: int | None = None, grpc_status: str | None = None) -> Outcome:
    """An answer from the upstream (its status says whether it is a failure)."""
    return outcome(OutcomeKind.ANSWER, latency, status, grpc_status)


def _carried_response_or_cause(error: BaseException, latency: float) -> Outcome | None:
    """The last resort for any exception: one that carries a ``response`` with a status is that
    answer (``raise_for_status()`` errors); one raised ``from`` a classifiable error (a library
    wrapping an ``OSError``) is what its cause is."""
    response: Any = getattr(error, "response", None)
    if response is not None:
        status = status_of(response)
        if status is not None:
            return answer(latency, status)
    cause = error.__cause__
    for _ in range(_MAX_CAUSES):  # bounded: a chain may loop
        if cause is None:
            return None
        made = ERRORS.known(cause, latency)
        if made is not None:
            return made
        cause = cause.__cause__
    return None


ERRORS: Final = ErrorTable(
    {
        ConnectionRefusedError: OutcomeKind.CONNECT_FAILURE,
        socket.gaierror: OutcomeKind.CONNECT_FAILURE,
        TimeoutError: OutcomeKind.TIMEOUT,
        ConnectionResetError: OutcomeKind.RESET,
        ConnectionAbortedError: OutcomeKind.RESET,
        BrokenPipeError: OutcomeKind.RESET,
    },
    last_resort=_carried_response_or_cause,
)
"""The process-wide table the default classifier uses."""


def register_error(error_type: type[BaseException], rule: Rule) -> None:
    """Classify ``error_type`` (and subclasses) as ``rule``: an :class:`OutcomeKind`, or a
    function ``(error, latency) -> Outcome | None`` (None lets the built-in rules decide)."""
    ERRORS.register(error_type, rule)
