"""``Mesh``: opening a bundle for one service, handles, events, logging, lifecycle."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from mesh_kit import compile_mesh
from meshspec_runtime import (
    BreakerTransition,
    BundleError,
    CallFailed,
    CallRefused,
    EndpointsEjected,
    EndpointsReturned,
    FailReason,
    Mesh,
    MeshClosedError,
    MeshEvent,
    Outcome,
    OutcomeKind,
    UnknownUpstreamError,
)
from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.errors import answer
from meshspec_runtime.loader import ServiceNotInBundleError

POLICY = {
    "timeout": "2s",
    "retry": {"attempts": 2, "backoff": {"base": "1ms", "max": "2ms"}, "on": ["5xx"]},
    "circuit_breaker": {
        "mode": "consecutive",
        "consecutive_failures": 2,
        "open_for": "60s",
    },
    "outlier_detection": {"consecutive_failures": 1, "base_ejection": "60s", "max_ejected": "50%"},
    "load_balancer": {"strategy": "round_robin"},
}


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return compile_mesh(tmp_path, {"payments": [9001, 9002], "cart": [9101]}, policy=POLICY)


class Answer:
    def __init__(self, status: int) -> None:
        self.status_code = status
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_open_hands_out_one_handle_per_upstream(bundle: Path) -> None:
    with Mesh.open(bundle, service="checkout") as mesh:
        assert set(mesh.upstreams) == {"payments", "cart"}
        payments = mesh.upstream("payments")
        assert payments is mesh.upstream("payments")  # one state per upstream, for good
        assert [e.port for e in payments.endpoints] == [9001, 9002]
        assert mesh.service == "checkout" and mesh.mesh == "test" and len(mesh.version) == 16


def test_bad_input_is_a_clear_error(bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(ServiceNotInBundleError, match=r"no service 'chekout'.*mean 'checkout'"):
        Mesh.open(bundle, service="chekout")
    with pytest.raises(BundleError, match=r"manifest\.json: missing"):
        Mesh.open(tmp_path / "nowhere", service="checkout")
    mesh = Mesh.open(bundle, service="checkout")
    with pytest.raises(UnknownUpstreamError, match=r"no upstream 'paymnts'.*mean 'payments'"):
        mesh.upstream("paymnts")
    with pytest.raises(UnknownUpstreamError, match="its upstreams: cart, payments"):
        mesh.call("inventory", lambda endpoint, timeout: None)


def test_a_closed_mesh_refuses_calls_and_closes_what_it_handed_out(bundle: Path) -> None:
    mesh = Mesh.open(bundle, service="checkout")
    client = mesh.adopt(Answer(200))
    handle = mesh.upstream("payments")
    mesh.close()
    mesh.close()  # idempotent
    assert client.closed
    with pytest.raises(MeshClosedError, match="is closed: no call to 'payments'"):
        handle.call(lambda endpoint, timeout: Answer(200))
    with pytest.raises(MeshClosedError):
        mesh.adopt(Answer(200))


def test_retried_answers_are_discarded_and_the_last_one_returned(bundle: Path) -> None:
    mesh = Mesh.open(bundle, service="checkout")
    answers = [Answer(503), Answer(200)]
    seen = iter(answers)
    result = mesh.upstream("cart").call(lambda e, t: next(seen), discard=Answer.close)
    assert result is answers[1] and not result.closed
    assert answers[0].closed


def test_an_async_discard_is_awaited(bundle: Path) -> None:
    mesh = Mesh.open(bundle, service="checkout")
    answers = [Answer(503), Answer(200)]
    closed: list[Answer] = []

    async def attempt(endpoint: Endpoint, timeout: float) -> Answer:
        return answers[len(closed)]

    async def aclose(answer: Answer) -> None:
        await asyncio.sleep(0)
        closed.append(answer)

    result = asyncio.run(mesh.upstream("cart").call_async(attempt, discard=aclose))
    assert result is answers[1] and closed == [answers[0]]


def test_events_report_breaker_ejections_and_refusals(
    bundle: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mesh = Mesh.open(bundle, service="checkout")
    events: list[MeshEvent] = []
    mesh.on(MeshEvent, events.append)  # every event
    transitions: list[BreakerTransition] = []
    mesh.on(BreakerTransition, transitions.append)

    tried: list[str] = []

    def failing(endpoint: Endpoint, timeout: float) -> Answer:
        tried.append(endpoint.id)
        return Answer(503)

    payments = mesh.upstream("payments")
    with caplog.at_level(logging.DEBUG, logger="meshspec_runtime"):
        with pytest.raises(CallFailed) as first:
            payments.call(failing)  # two 503s: both endpoints ejected, breaker opens
        assert first.value.reason is FailReason.ATTEMPTS_EXHAUSTED
        with pytest.raises(CallFailed) as second:
            payments.call(failing)
        assert second.value.reason is FailReason.BREAKER_OPEN
    assert [(t.old, t.new) for t in transitions] == [("closed", "open")]
    ejected = [e for e in events if isinstance(e, EndpointsEjected)]
    # the first endpoint tried is ejected after one failure, seen by the retry's pick
    assert len(tried) == 2 and tried[0] != tried[1]
    assert [e.endpoints for e in ejected] == [(tried[0],)]
    refused = [e for e in events if isinstance(e, CallRefused)]
    assert [(r.upstream, r.reason) for r in refused] == [("payments", FailReason.BREAKER_OPEN)]
    record = next(r for r in caplog.records if getattr(r, "mesh_event", "") == "breaker_transition")
    assert record.levelno == logging.WARNING
    assert (record.mesh_caller, record.mesh_upstream, record.mesh_new) == (  # type: ignore[attr-defined]
        "checkout",
        "payments",
        "open",
    )
    assert "checkout -> payments: circuit breaker closed -> open" in record.getMessage()


def test_ejections_returning_are_reported(bundle: Path) -> None:
    mesh = Mesh.open(bundle, service="checkout")
    returned: list[EndpointsReturned] = []
    mesh.on(EndpointsReturned, returned.append)
    policies = mesh.upstream("payments").policies
    assert policies.outlier is not None
    policies.outlier.on_failure(0.0, "payments-1", 2)
    policies.refresh_ejections(1.0)
    policies.refresh_ejections(61.0)  # base_ejection is 60 s
    assert [r.endpoints for r in returned] == [("payments-1",)]


def test_a_raising_handler_is_logged_and_never_breaks_the_call(
    bundle: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mesh = Mesh.open(bundle, service="checkout")

    def broken(event: MeshEvent) -> None:
        raise RuntimeError("handler bug")

    mesh.on(EndpointsEjected, broken)
    with pytest.raises(CallFailed) as failed:
        mesh.upstream("payments").call(lambda e, t: Answer(503))
    assert failed.value.reason is FailReason.ATTEMPTS_EXHAUSTED  # not the handler's error
    assert any("handler" in r.getMessage() and r.exc_info for r in caplog.records)
    with pytest.raises(TypeError, match="MeshEvent type"):
        mesh.on(int, print)  # type: ignore[arg-type]


def test_a_user_classifier_falls_back_to_the_builtin_one(bundle: Path) -> None:
    class Busy(Exception):
        pass

    def mine(value: object, latency: float) -> Outcome | None:
        return answer(latency, 503) if isinstance(value, Busy) else None

    mesh = Mesh.open(bundle, service="checkout", classify=mine)
    results = iter([Busy(), ConnectionRefusedError(), Answer(200)])

    def attempt(endpoint: Endpoint, timeout: float) -> Answer:
        value = next(results)
        if isinstance(value, BaseException):
            raise value
        return value

    with pytest.raises(CallFailed) as failed:  # Busy is a 503 (retried), refused is not retried
        mesh.upstream("cart").call(attempt)
    assert failed.value.reason is FailReason.NOT_RETRYABLE
    assert failed.value.last is not None
    assert failed.value.last.kind is OutcomeKind.CONNECT_FAILURE
