"""The requests integration (``mesh.requests_session``) against real loopback servers, and the
outcome each requests error stands for."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from http_servers import Behaviour, LoopbackServer, serving
from mesh_kit import compile_mesh
from meshspec_runtime import (
    CallFailed,
    EndpointsEjected,
    FailReason,
    Mesh,
    MeshClosedError,
    MeshError,
    OutcomeKind,
    UnknownUpstreamError,
    classify,
)
from meshspec_runtime.deadline import TIMEOUT_HEADER
from meshspec_runtime.integrations.requests import MeshAdapter, MeshConnectionError
from support import free_port

PER_TRY_MS = 300


def policy(**overrides: Any) -> dict[str, Any]:
    made: dict[str, Any] = {
        "timeout": "3s",
        "retry": {
            "attempts": 4,
            "per_try_timeout": f"{PER_TRY_MS}ms",
            "backoff": {"base": "1ms", "max": "2ms"},
            "on": ["connect-failure", "timeout", "reset", "5xx"],
        },
        "load_balancer": {"strategy": "round_robin"},
    }
    made.update(overrides)
    return made


def open_mesh(tmp_path: Path, ports: list[int], settings: dict[str, Any]) -> Mesh:
    bundle = compile_mesh(tmp_path, {"payments": ports}, policy=settings)
    return Mesh.open(bundle, service="checkout")


# -- classification: the real client against servers that refuse, hang, reset, answer 503 ------


def _raised(url: str, timeout: float) -> BaseException:
    with requests.Session() as plain:
        try:
            plain.post(url, data=b"body", timeout=timeout).raise_for_status()
        except Exception as error:
            return error
    raise AssertionError(f"{url} answered without error")


def test_a_refused_connection_is_a_connect_failure() -> None:
    error = _raised(f"http://127.0.0.1:{free_port()}/", 1.0)
    assert isinstance(error, requests.ConnectionError)
    assert classify(error, 0.01).kind is OutcomeKind.CONNECT_FAILURE


@pytest.mark.parametrize(
    ("behaviour", "expected_error", "outcome"),
    [
        ("hang", requests.ReadTimeout, OutcomeKind.TIMEOUT),
        ("slow", requests.ReadTimeout, OutcomeKind.TIMEOUT),
        ("reset", requests.ConnectionError, OutcomeKind.RESET),
    ],
)
def test_what_a_server_did_is_the_outcome(
    behaviour: Behaviour, expected_error: type[Exception], outcome: OutcomeKind
) -> None:
    with LoopbackServer(behaviour, delay=1.0) as server:
        error = _raised(server.url, 0.2)
    assert isinstance(error, expected_error), repr(error)
    assert classify(error, 0.01).kind is outcome


def test_raise_for_status_is_the_answer_it_carries() -> None:
    with LoopbackServer(503) as server:
        error = _raised(server.url, 1.0)
    assert isinstance(error, requests.HTTPError)
    made = classify(error, 0.01)
    assert (made.kind, made.status) == (OutcomeKind.ANSWER, 503)


def test_a_connect_timeout_is_a_connect_failure_and_a_tls_error_is_not_retryable() -> None:
    # Neither can be provoked on loopback without a filtered port or a TLS server.
    assert classify(requests.ConnectTimeout("timed out"), 0.01).kind is OutcomeKind.CONNECT_FAILURE
    assert classify(requests.exceptions.SSLError("bad cert"), 0.01).kind is OutcomeKind.ERROR


# -- the session through the mesh -----------------------------------------------------------


def test_user_story_dead_hung_and_503_instances_are_retried_then_ejected(
    tmp_path: Path,
) -> None:
    settings = policy(
        outlier_detection={"consecutive_failures": 2, "base_ejection": "30s", "max_ejected": "75%"},
        load_balancer={"strategy": "round_robin", "panic_threshold": "0%"},
        retry={**policy()["retry"], "attempts": 7},
    )
    ejected: list[str] = []
    with serving("hang", 503, "ok") as (hung, overloaded, healthy):
        ports = [free_port(), hung.port, overloaded.port, healthy.port]
        with open_mesh(tmp_path, ports, settings) as mesh:
            mesh.on(EndpointsEjected, lambda event: ejected.extend(event.endpoints))
            session = mesh.requests_session("payments")
            statuses = [session.post("/charge", json={"n": n}).status_code for n in range(20)]
    assert statuses == [200] * 20
    assert sorted(ejected) == ["payments-0", "payments-1", "payments-2"]
    assert hung.count == 2 and overloaded.count == 2
    assert healthy.count == 20
    assert all(req.host == "payments" for req in healthy.requests)
    headers = [h for server in (hung, overloaded, healthy) for h in server.timeout_headers]
    assert all(h is not None and 0 < int(h) <= PER_TRY_MS for h in headers)


@pytest.mark.parametrize("kind", ["generator", "file"])
def test_a_streamed_body_is_buffered_and_resent_on_retry(tmp_path: Path, kind: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"first-"
        yield b"second"

    body = chunks() if kind == "generator" else io.BytesIO(b"first-second")
    with (
        serving(503) as (overloaded,),
        open_mesh(tmp_path, [overloaded.port], policy()) as mesh,
    ):
        response = mesh.requests_session("payments").post("/charge", data=body)
    assert response.status_code == 503  # the last answer, after the four attempts
    assert overloaded.bodies == [b"first-second"] * 4
    assert all(r.headers.get("transfer-encoding") is None for r in overloaded.requests)


def test_the_response_and_its_request_keep_the_url_the_user_wrote(tmp_path: Path) -> None:
    with serving("ok") as (server,), open_mesh(tmp_path, [server.port], policy()) as mesh:
        session = mesh.requests_session()
        first = session.get("http://payments/a")
        second = session.get("http://payments:8443/b?q=1")
    assert [(r.host, r.path) for r in server.requests] == [
        ("payments", "/a"),
        ("payments:8443", "/b?q=1"),
    ]
    assert (first.url, second.url) == ("http://payments/a", "http://payments:8443/b?q=1")
    assert first.request.url == "http://payments/a"
    assert "Host" not in first.request.headers


def test_a_relative_url_joins_the_upstream_and_the_users_request_is_left_as_made(
    tmp_path: Path,
) -> None:
    with serving("ok") as (server,), open_mesh(tmp_path, [server.port], policy()) as mesh:
        session = mesh.requests_session("payments")
        mine = requests.Request("GET", "/orders?page=2")
        prepared = session.prepare_request(mine)
        sent = session.send(prepared)
        absolute = session.get("http://payments/a")  # an absolute URL is left alone
    assert prepared.url == "http://payments/orders?page=2"
    assert mine.url == "/orders?page=2"
    assert (sent.status_code, sent.url, absolute.url) == (
        200,
        "http://payments/orders?page=2",
        "http://payments/a",
    )
    assert [(r.host, r.path) for r in server.requests] == [
        ("payments", "/orders?page=2"),
        ("payments", "/a"),
    ]


def test_the_timeout_header_is_sent_then_the_users_headers_are_given_back(tmp_path: Path) -> None:
    with (
        serving(503, 503, 503) as servers,
        open_mesh(tmp_path, [s.port for s in servers], policy()) as mesh,
    ):
        session = mesh.requests_session("payments")
        retried = session.get("/", headers={"x-trace": "1"})
        own = session.get("/", headers={TIMEOUT_HEADER: b"99999999"})  # bytes: requests allows
    sent = [r for s in servers for r in s.requests]
    assert len(sent) == 8  # two calls of four attempts, each with the attempt's own header
    assert all(0 < int(r.timeout_header or "0") <= PER_TRY_MS for r in sent)
    # after the retries, the request is the user's as they made it
    assert retried.status_code == 503
    assert TIMEOUT_HEADER not in retried.request.headers
    assert retried.request.headers["x-trace"] == "1"
    assert own.request.headers[TIMEOUT_HEADER] == b"99999999"


def test_a_host_header_the_user_set_is_sent_and_kept(tmp_path: Path) -> None:
    with serving("ok") as (server,), open_mesh(tmp_path, [server.port], policy()) as mesh:
        response = mesh.requests_session().get("http://payments/a", headers={"host": "api.example"})
    assert [(r.host, r.path) for r in server.requests] == [("api.example", "/a")]
    assert response.request.headers["Host"] == "api.example"


def test_retried_answers_are_closed_and_leave_no_connection_open(tmp_path: Path) -> None:
    with (
        serving(503, "ok") as (overloaded, healthy),
        open_mesh(tmp_path, [overloaded.port, healthy.port], policy()) as mesh,
    ):
        session = mesh.requests_session("payments")
        for _ in range(10):
            assert session.get("/").status_code == 200
        assert overloaded.count >= 9  # round robin: every call (but maybe the first) meets it
        assert overloaded.wait_open_connections(at_most=0) == 0
        assert healthy.open_connections <= 1


def test_refused_everywhere_raises_a_requests_connection_error_that_is_call_failed(
    tmp_path: Path,
) -> None:
    with (
        open_mesh(tmp_path, [free_port(), free_port()], policy()) as mesh,
        pytest.raises(requests.ConnectionError) as raised,
    ):
        mesh.requests_session("payments").get("/")
    error = raised.value
    assert isinstance(error, CallFailed) and isinstance(error, MeshConnectionError)
    assert error.reason is FailReason.ATTEMPTS_EXHAUSTED
    assert error.last is not None and error.last.kind is OutcomeKind.CONNECT_FAILURE
    assert isinstance(error.__cause__, requests.ConnectionError)


def test_a_hung_instance_times_out_per_try_as_a_requests_read_timeout(tmp_path: Path) -> None:
    settings = policy(retry={"attempts": 2, "per_try_timeout": "200ms", "on": ["timeout"]})
    with (
        serving("hang") as (hung,),
        open_mesh(tmp_path, [hung.port], settings) as mesh,
        pytest.raises(requests.ReadTimeout) as raised,
    ):
        mesh.requests_session("payments").get("/", timeout=10)
    assert isinstance(raised.value, CallFailed) and isinstance(
        raised.value, requests.ConnectionError
    )
    assert raised.value.last is not None and raised.value.last.kind is OutcomeKind.TIMEOUT
    assert hung.timeout_headers == ["200", "200"]


def test_an_open_breaker_raises_a_connection_error_without_cause(tmp_path: Path) -> None:
    settings = policy(
        retry={"attempts": 1, "on": []},
        circuit_breaker={"mode": "consecutive", "consecutive_failures": 1, "open_for": "30s"},
    )
    with serving(503) as (overloaded,), open_mesh(tmp_path, [overloaded.port], settings) as mesh:
        session = mesh.requests_session("payments")
        assert session.get("/").status_code == 503
        with pytest.raises(requests.ConnectionError) as raised:
            session.get("/")
    assert isinstance(raised.value, CallFailed)
    assert raised.value.reason is FailReason.BREAKER_OPEN
    assert raised.value.__cause__ is None
    assert overloaded.count == 1


def test_a_streamed_response_is_returned_unread(tmp_path: Path) -> None:
    with (
        serving(503, "ok") as servers,
        open_mesh(tmp_path, [s.port for s in servers], policy()) as mesh,
        mesh.requests_session("payments").get("/", stream=True) as response,
    ):
        assert response.status_code == 200
        assert not response._content_consumed
        assert response.raw.read() == b"ok"


def test_hash_on_header_sends_a_key_to_the_same_instance(tmp_path: Path) -> None:
    settings = policy(load_balancer={"strategy": "ring_hash", "hash_on": "x-user"})
    with (
        serving("ok", "ok", "ok") as servers,
        open_mesh(tmp_path, [s.port for s in servers], settings) as mesh,
    ):
        session = mesh.requests_session("payments")
        served_by: dict[str, set[int]] = {}
        for user in ("ann", "bob", "cyd", "dan", "eve", "fay"):
            for _ in range(4):
                before = [s.count for s in servers]
                session.get("/", headers={"x-user": user})
                hit = [i for i, s in enumerate(servers) if s.count > before[i]]
                served_by.setdefault(user, set()).update(hit)
    assert all(len(hit) == 1 for hit in served_by.values()), served_by


def test_the_user_timeout_caps_the_attempt_timeout(tmp_path: Path) -> None:
    with (
        serving("slow") as (slow,),
        open_mesh(tmp_path, [slow.port], policy(retry={"attempts": 1, "on": []})) as mesh,
        pytest.raises(requests.ReadTimeout),
    ):
        mesh.requests_session("payments").get("/", timeout=0.05)  # slow answers after 0.2 s
    assert slow.count == 1


def test_misuse_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    with serving("ok") as (server,):
        mesh = open_mesh(tmp_path, [server.port], policy())
        session = mesh.requests_session()
        with pytest.raises(UnknownUpstreamError, match=r"'paymnts'.*did you mean 'payments'"):
            session.get("http://paymnts/")
        with pytest.raises(UnknownUpstreamError, match="'orders'"):
            mesh.requests_session("orders")
        with pytest.raises(requests.exceptions.MissingSchema):  # requests' own: no base URL
            session.get("/charge")
        hostless = requests.Request("GET", "http://payments/x").prepare()
        hostless.url = "/x"  # requests refuses such a URL itself; an adapter is reachable directly
        with pytest.raises(MeshError, match="'/x' has no host"):
            MeshAdapter(mesh).send(hostless)
        own = requests.Session()
        own.mount("http://", MeshAdapter(mesh))
        assert own.get("http://payments/").status_code == 200
        mesh.close()
        with pytest.raises(MeshClosedError):  # the mesh closed the session's adapter
            session.get("http://payments/")
        with pytest.raises(MeshClosedError):  # an adapter the mesh did not hand out
            own.get("http://payments/")
    assert server.count == 1
