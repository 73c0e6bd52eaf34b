"""What happened to one attempt, and the conditions (retry-on, failure-on) that match it.

The driver (threads, asyncio, SimPy) reports an :class:`Outcome`; the policies never see an
exception or a socket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from meshspec_runtime.policy.config import check_condition


class OutcomeKind(StrEnum):
    ANSWER = "answer"
    """The upstream answered; ``status``/``grpc_status`` say how (a 503 is an answer too: the
    policies' conditions decide whether it is a failure)."""
    CONNECT_FAILURE = "connect-failure"
    """No connection: refused, unreachable, DNS failure."""
    TIMEOUT = "timeout"
    """No answer within the attempt's timeout."""
    RESET = "reset"
    """The connection broke mid-request."""
    ERROR = "error"
    """The user's function raised something else; never retried unless a predicate says so."""


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    latency: float = 0.0
    """Seconds from the attempt's start to this outcome."""
    status: int | None = None
    """HTTP status, when the upstream answered over HTTP."""
    grpc_status: str | None = None
    """gRPC status name (``UNAVAILABLE``), when the upstream answered over gRPC."""


OutcomePredicate = Callable[[Outcome], bool]


class ConditionSet:
    """Matches outcomes against conditions such as ``5xx``, ``503``, ``grpc:UNAVAILABLE``.

    ``extra`` is a user predicate for custom conditions; it is consulted when no listed
    condition matches.
    """

    __slots__ = ("_client_errors", "_extra", "_grpc", "_kinds", "_server_errors", "_statuses")

    def __init__(self, conditions: Iterable[str], extra: OutcomePredicate | None = None) -> None:
        normalised = [check_condition(c) for c in conditions]
        self._kinds = frozenset(
            OutcomeKind(c) for c in normalised if c in ("connect-failure", "timeout", "reset")
        )
        self._server_errors = "5xx" in normalised
        self._client_errors = "4xx" in normalised
        statuses = {int(c) for c in normalised if c.isdigit()}
        if "gateway-error" in normalised:
            statuses |= {502, 503, 504}
        self._statuses = frozenset(statuses)
        self._grpc = frozenset(c[5:] for c in normalised if c.startswith("grpc:"))
        self._extra = extra

    def answer_statuses(self) -> frozenset[int]:
        """The HTTP statuses (100-599) of a plain answer (no gRPC status) that the listed
        conditions match; a user predicate (``extra``) is not consulted."""
        matched = set(self._statuses)
        if self._server_errors:
            matched.update(range(500, 600))
        if self._client_errors:
            matched.update(range(400, 500))
        return frozenset(s for s in matched if 100 <= s <= 599)

    def matches(self, outcome: Outcome) -> bool:
        if outcome.kind in self._kinds:
            return True
        status = outcome.status
        if status is not None and (
            status in self._statuses
            or (self._server_errors and 500 <= status <= 599)
            or (self._client_errors and 400 <= status <= 499)
        ):
            return True
        if outcome.grpc_status is not None and outcome.grpc_status in self._grpc:
            return True
        return self._extra is not None and self._extra(outcome)


@lru_cache(maxsize=1024)
def condition_set(conditions: tuple[str, ...]) -> ConditionSet:
    """The :class:`ConditionSet` of ``conditions`` with no user predicate, shared by every
    policy listing the same conditions (it is never changed after construction)."""
    return ConditionSet(conditions)
