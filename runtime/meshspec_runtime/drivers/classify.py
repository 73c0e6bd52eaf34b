"""Turning what the user's function did (a result or an exception) into an :class:`Outcome`.

Shared by the sync and asyncio drivers. A classifier takes the value the attempt produced - the
function's return value, or the exception it raised - and the attempt's latency in seconds.
Plain Python: integrations subclass ``CallFailed`` together with their libraries' errors, which
a compiled class would forbid; the drivers' per-answer step is ``drivers.answers``, compiled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar

from meshspec_runtime.errors import ERRORS, outcome, status_of
from meshspec_runtime.policy.call import Fail, FailReason
from meshspec_runtime.policy.outcome import Outcome, OutcomeKind

Classifier = Callable[[object, float], Outcome]
UserClassifier = Callable[[object, float], Outcome | None]
"""A user's classifier: ``None`` for what it does not know, which the built-in one decides."""

_ANSWER: Final = OutcomeKind.ANSWER

__all__ = [
    "CallFailed",
    "Classifier",
    "UserClassifier",
    "caused",
    "classify",
    "classify_error",
    "falling_back",
    "outcome",
    "status_of",
]


def classify_error(error: BaseException, latency: float) -> Outcome:
    """What an exception stands for, by the table in ``meshspec_runtime.errors``: connection
    refused or a name that does not resolve -> connect-failure, ``TimeoutError`` -> timeout,
    reset / aborted / broken pipe -> reset, each client library's own errors as its
    integration module says, an error carrying a response -> that answer, anything else ->
    error (never retried unless a predicate says so)."""
    return ERRORS.classify(error, latency)


def classify(value: object, latency: float) -> Outcome:
    """The default classifier: exceptions as :func:`classify_error`; a result with an integer
    ``status_code`` or ``status`` attribute (requests, httpx, aiohttp, urllib) is an answer with
    that HTTP status; any other result is a plain success."""
    if isinstance(value, BaseException):
        return classify_error(value, latency)
    status = getattr(value, "status_code", None)
    if status is None:
        status = getattr(value, "status", None)
    return outcome(_ANSWER, latency, status if type(status) is int else status_of(value), None)


def falling_back(user: UserClassifier) -> Classifier:
    """``user``'s classifier, with the built-in one deciding what it returns ``None`` for."""

    def classifier(value: object, latency: float) -> Outcome:
        made = user(value, latency)
        return made if made is not None else classify(value, latency)

    return classifier


class CallFailed(Exception):
    """The call ended without a usable answer.

    ``reason`` says which policy ended it; ``last`` is the last attempt's outcome (None when
    no attempt was made); ``result`` is what the last attempt returned, when it returned (for
    example the response of a retried 503). The last attempt's exception is ``__cause__``.
    """

    def __init__(self, step: Fail, result: object = None) -> None:
        last = step.last
        detail = f" (last attempt: {_describe(last)})" if last is not None else ""
        super().__init__(f"call failed: {step.reason.value}{detail}")
        self.reason: FailReason = step.reason
        self.last: Outcome | None = last
        self.result = result


E = TypeVar("E", bound=BaseException)


def caused(error: E, cause: BaseException | None) -> E:
    """``error`` with ``cause`` as its ``__cause__``: ``raise caused(error, cause)`` is
    ``raise error from cause``, which mypyc compiles without the cause. (A helper rather than
    a local variable holding the error: that would make a frame-traceback-error cycle, left
    for the garbage collector.)"""
    error.__cause__ = cause
    return error


def _describe(last: Outcome) -> str:
    if last.status is not None:
        return f"HTTP {last.status}"
    if last.grpc_status is not None:
        return f"gRPC {last.grpc_status}"
    return last.kind.value
