"""The exception table: built-in rules, most specific type first, user rules, causes, urllib."""

from __future__ import annotations

import errno
import socket
import urllib.error
from email.message import Message

import pytest
from meshspec_runtime import CallFailed, Fail, FailReason, Outcome, OutcomeKind, register_error
from meshspec_runtime.errors import ERRORS, ErrorTable, answer


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ConnectionRefusedError(), OutcomeKind.CONNECT_FAILURE),
        (socket.gaierror(), OutcomeKind.CONNECT_FAILURE),
        (TimeoutError(), OutcomeKind.TIMEOUT),
        (OSError(errno.ETIMEDOUT, "timed out"), OutcomeKind.TIMEOUT),  # a TimeoutError
        (OSError(errno.ECONNREFUSED, "refused"), OutcomeKind.CONNECT_FAILURE),
        (OSError(errno.EACCES, "denied"), OutcomeKind.ERROR),
        (ConnectionResetError(), OutcomeKind.RESET),
        (ConnectionAbortedError(), OutcomeKind.RESET),
        (BrokenPipeError(), OutcomeKind.RESET),
        (ValueError("bug"), OutcomeKind.ERROR),
    ],
)
def test_builtin_rules(error: BaseException, kind: OutcomeKind) -> None:
    made = ERRORS.classify(error, 0.25)
    assert (made.kind, made.latency) == (kind, 0.25)


def test_a_wrapped_os_error_is_classified_by_its_cause() -> None:
    class ClientError(Exception):
        pass

    try:
        try:
            raise ConnectionRefusedError
        except ConnectionRefusedError as refused:
            raise ClientError("could not connect") from refused
    except ClientError as wrapped:
        assert ERRORS.classify(wrapped, 0.0).kind is OutcomeKind.CONNECT_FAILURE


def test_a_cause_chain_that_loops_ends() -> None:
    first, second = RuntimeError("a"), RuntimeError("b")
    first.__cause__, second.__cause__ = second, first
    assert ERRORS.classify(first, 0.0).kind is OutcomeKind.ERROR


def test_an_error_carrying_a_response_is_that_answer() -> None:
    class Response:
        status_code = 503

    error = RuntimeError("bad status")
    error.response = Response()  # type: ignore[attr-defined]
    assert ERRORS.classify(error, 0.0) == Outcome(OutcomeKind.ANSWER, 0.0, status=503)


def test_the_most_specific_rule_wins_and_a_function_can_defer() -> None:
    class Base(Exception):
        pass

    class Special(Base):
        pass

    def only_when_flagged(error: BaseException, latency: float) -> Outcome | None:
        return answer(latency, 429) if getattr(error, "flag", False) else None

    table = ErrorTable({Base: OutcomeKind.TIMEOUT}, last_resort=lambda error, latency: None)
    table.register(Special, only_when_flagged)
    flagged = Special()
    flagged.flag = True  # type: ignore[attr-defined]
    assert table.classify(flagged, 0.0).status == 429
    assert table.classify(Special(), 0.0).kind is OutcomeKind.TIMEOUT  # deferred to Base
    assert table.classify(Base(), 0.0).kind is OutcomeKind.TIMEOUT


def test_register_error_applies_to_subclasses_and_refuses_nonsense() -> None:
    class Overloaded(Exception):
        pass

    class VeryOverloaded(Overloaded):
        pass

    assert ERRORS.classify(VeryOverloaded(), 0.0).kind is OutcomeKind.ERROR
    register_error(Overloaded, OutcomeKind.RESET)
    assert ERRORS.classify(VeryOverloaded(), 0.0).kind is OutcomeKind.RESET
    with pytest.raises(TypeError, match="exception type"):
        register_error("Overloaded", OutcomeKind.RESET)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="OutcomeKind or a function"):
        register_error(Overloaded, "reset")  # type: ignore[arg-type]


def test_urllib_http_error_is_an_answer_and_url_error_its_reason() -> None:
    http_error = urllib.error.HTTPError("http://payments/", 503, "busy", Message(), None)
    assert ERRORS.classify(http_error, 0.1) == Outcome(OutcomeKind.ANSWER, 0.1, status=503)
    refused = urllib.error.URLError(ConnectionRefusedError(111, "refused"))
    assert ERRORS.classify(refused, 0.0).kind is OutcomeKind.CONNECT_FAILURE
    timed_out = urllib.error.URLError(TimeoutError("timed out"))
    assert ERRORS.classify(timed_out, 0.0).kind is OutcomeKind.TIMEOUT
    assert ERRORS.classify(urllib.error.URLError("unknown url type"), 0.0).kind is (
        OutcomeKind.ERROR
    )


def test_call_failed_names_an_http_500_as_an_answer() -> None:
    failed = CallFailed(Fail(FailReason.ATTEMPTS_EXHAUSTED, answer(0.0, 500)))
    assert failed.last is not None and failed.last.kind == "answer"
    assert str(failed) == "call failed: attempts_exhausted (last attempt: HTTP 500)"
