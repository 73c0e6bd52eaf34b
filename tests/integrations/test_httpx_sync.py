"""The httpx integration (``mesh.httpx_client``) against real loopback servers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_servers import serving
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
)
from meshspec_runtime.deadline import TIMEOUT_HEADER
from meshspec_runtime.integrations.httpx import MeshTransport, MeshTransportError
from support import free_port

PER_TRY_MS = 300


def policy(**overrides: Any) -> dict[str, Any]:
    """Short timeouts, retries on every failure, no ejection unless asked."""
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


def open_mesh(tmp_path: Path, ports: list[int], settings: Mapping[str, Any]) -> Mesh:
    return Mesh.open(
        compile_mesh(tmp_path, {"payments": ports}, policy=settings), service="checkout"
    )


@pytest.fixture
def dead_port() -> int:
    return free_port()


def test_user_story_dead_hung_and_503_instances_are_retried_then_ejected(
    tmp_path: Path, dead_port: int
) -> None:
    settings = policy(
        outlier_detection={"consecutive_failures": 2, "base_ejection": "30s", "max_ejected": "75%"},
        # Envoy's panic mode would balance over all four once three are out: not this test's point
        load_balancer={"strategy": "round_robin", "panic_threshold": "0%"},
        # Round robin over a shrinking set may meet each bad instance twice before the good one
        retry={**policy()["retry"], "attempts": 7},
    )
    with serving("hang", 503, "ok") as (hung, overloaded, healthy):
        ports = [dead_port, hung.port, overloaded.port, healthy.port]
        with open_mesh(tmp_path, ports, settings) as mesh:
            ejected: list[str] = []
            mesh.on(EndpointsEjected, lambda event: ejected.extend(event.endpoints))
            with mesh.httpx_client("payments") as client:
                statuses = [client.post("/charge", json={"n": n}).status_code for n in range(20)]
            now = mesh.clock()
            still_ejected = mesh.upstream("payments").policies.outlier
            assert still_ejected is not None
            assert still_ejected.ejected(now) == {"payments-0", "payments-1", "payments-2"}
    assert statuses == [200] * 20
    assert sorted(ejected) == ["payments-0", "payments-1", "payments-2"]
    assert hung.count == 2 and overloaded.count == 2  # two failures each, then ejected
    assert healthy.count == 20
    assert all(req.host == "payments" for req in healthy.requests)


def test_each_attempt_carries_the_timeout_header_within_the_per_try_timeout(
    tmp_path: Path,
) -> None:
    with (
        serving(503, "ok") as servers,
        open_mesh(tmp_path, [s.port for s in servers], policy()) as mesh,
    ):
        client = mesh.httpx_client("payments")
        for _ in range(4):
            assert client.get("/").status_code == 200
    headers = [h for s in servers for h in s.timeout_headers]
    assert len(headers) >= 6
    assert all(h is not None and 0 < int(h) <= PER_TRY_MS for h in headers)


def test_the_timeout_header_is_sent_then_the_users_headers_are_given_back(tmp_path: Path) -> None:
    with (
        serving(503, 503, 503) as servers,
        open_mesh(tmp_path, [s.port for s in servers], policy()) as mesh,
    ):
        client = mesh.httpx_client("payments")
        retried = client.get("/", headers={"x-trace": "1"})
        own = client.get("/", headers={TIMEOUT_HEADER: "99999999"})
    sent = [r for s in servers for r in s.requests]
    assert len(sent) == 8  # two calls of four attempts, each with the attempt's own header
    assert all(0 < int(r.timeout_header or "0") <= PER_TRY_MS for r in sent)
    # after the retries, the request is the user's as they made it
    assert retried.status_code == 503
    assert TIMEOUT_HEADER not in retried.request.headers
    assert retried.request.headers["x-trace"] == "1"
    assert own.request.headers.get_list(TIMEOUT_HEADER) == ["99999999"]


def test_a_streamed_body_is_buffered_and_resent_on_retry(tmp_path: Path) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"first-"
        yield b"second"

    with (
        serving(503) as (overloaded,),
        open_mesh(tmp_path, [overloaded.port], policy()) as mesh,
    ):
        response = mesh.httpx_client("payments").post("/charge", content=chunks())
    assert response.status_code == 503  # the last answer, after the four attempts
    assert overloaded.bodies == [b"first-second"] * 4


def test_the_host_header_is_the_upstream_the_user_named(tmp_path: Path) -> None:
    with serving("ok") as (server,), open_mesh(tmp_path, [server.port], policy()) as mesh:
        client = mesh.httpx_client()
        client.get("http://payments/a")
        client.get("http://payments:8443/b?q=1")
    assert [(r.host, r.path) for r in server.requests] == [
        ("payments", "/a"),
        ("payments:8443", "/b?q=1"),
    ]


def test_retried_answers_are_closed_and_leave_no_connection_open(tmp_path: Path) -> None:
    with (
        serving(503, "ok") as (overloaded, healthy),
        open_mesh(tmp_path, [overloaded.port, healthy.port], policy()) as mesh,
    ):
        client = mesh.httpx_client("payments")
        for _ in range(10):
            assert client.get("/").status_code == 200
        assert overloaded.count >= 9  # round robin: every call (but maybe the first) meets it
        # An unclosed 503 would hold its connection; closed, the server sees it go.
        assert overloaded.wait_open_connections(at_most=0) == 0
        assert healthy.open_connections <= 1  # the pool's one idle keep-alive connection


def test_the_last_answer_is_returned_when_retries_are_exhausted(tmp_path: Path) -> None:
    settings = policy(retry={"attempts": 2, "per_try_timeout": "300ms", "on": ["5xx"]})
    with (
        serving(503, 503) as servers,
        open_mesh(tmp_path, [s.port for s in servers], settings) as mesh,
    ):
        response = mesh.httpx_client("payments").get("/")
        assert response.status_code == 503
        assert response.text == "status 503"
        with pytest.raises(httpx.HTTPStatusError):
            response.raise_for_status()
    assert [s.count for s in servers] == [1, 1]


def test_refused_everywhere_raises_an_httpx_connect_error_that_is_call_failed(
    tmp_path: Path,
) -> None:
    ports = [free_port(), free_port()]
    with (
        open_mesh(tmp_path, ports, policy()) as mesh,
        pytest.raises(httpx.ConnectError) as raised,
    ):
        mesh.httpx_client("payments").get("/")
    error = raised.value
    assert isinstance(error, CallFailed) and isinstance(error, MeshTransportError)
    assert error.reason is FailReason.ATTEMPTS_EXHAUSTED
    assert error.last is not None and error.last.kind is OutcomeKind.CONNECT_FAILURE
    assert isinstance(error.__cause__, httpx.ConnectError)
    assert not isinstance(error.__cause__, CallFailed)


def test_a_hung_instance_times_out_per_try_as_an_httpx_timeout(tmp_path: Path) -> None:
    settings = policy(retry={"attempts": 2, "per_try_timeout": "200ms", "on": ["timeout"]})
    with (
        serving("hang") as (hung,),
        open_mesh(tmp_path, [hung.port], settings) as mesh,
        pytest.raises(httpx.TimeoutException) as raised,
    ):
        mesh.httpx_client("payments", timeout=10.0).get("/")
    assert isinstance(raised.value, CallFailed)
    assert raised.value.last is not None and raised.value.last.kind is OutcomeKind.TIMEOUT
    assert hung.count == 2
    assert hung.timeout_headers == ["200", "200"]


def test_an_open_breaker_raises_a_transport_error_without_cause(tmp_path: Path) -> None:
    settings = policy(
        retry={"attempts": 1, "on": []},
        circuit_breaker={"mode": "consecutive", "consecutive_failures": 1, "open_for": "30s"},
    )
    with (
        serving(503) as (overloaded,),
        open_mesh(tmp_path, [overloaded.port], settings) as mesh,
    ):
        client = mesh.httpx_client("payments")
        assert client.get("/").status_code == 503
        with pytest.raises(httpx.TransportError) as raised:
            client.get("/")
    assert isinstance(raised.value, CallFailed)
    assert raised.value.reason is FailReason.BREAKER_OPEN
    assert raised.value.__cause__ is None
    assert overloaded.count == 1


def test_a_streamed_response_is_returned_unread(tmp_path: Path) -> None:
    with (
        serving(503, "ok") as servers,
        open_mesh(tmp_path, [s.port for s in servers], policy()) as mesh,
    ):
        client = mesh.httpx_client("payments")
        with client.stream("GET", "/") as response:
            assert response.status_code == 200
            assert not response.is_stream_consumed
            assert response.read() == b"ok"


def test_hash_on_header_sends_a_key_to_the_same_instance(tmp_path: Path) -> None:
    settings = policy(load_balancer={"strategy": "ring_hash", "hash_on": "x-user"})
    with (
        serving("ok", "ok", "ok") as servers,
        open_mesh(tmp_path, [s.port for s in servers], settings) as mesh,
    ):
        client = mesh.httpx_client("payments")
        served_by: dict[str, set[int]] = {}
        for user in ("ann", "bob", "cyd", "dan", "eve", "fay"):
            for _ in range(4):
                before = [s.count for s in servers]
                client.get("/", headers={"x-user": user})
                hit = [i for i, s in enumerate(servers) if s.count > before[i]]
                served_by.setdefault(user, set()).update(hit)
    assert all(len(hit) == 1 for hit in served_by.values()), served_by


def test_the_client_timeout_and_the_attempt_timeout_the_shorter_wins(tmp_path: Path) -> None:
    seen: list[tuple[httpx.URL, str, object]] = []

    class Recording(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen.append((request.url, request.headers["host"], request.extensions["timeout"]))
            return super().handle_request(request)

    with serving("ok") as (server,), open_mesh(tmp_path, [server.port], policy()) as mesh:
        client = mesh.httpx_client("payments", transport=Recording(retries=0))
        response = client.get("/", timeout=httpx.Timeout(10.0, connect=0.1))
    ((url, host, timeouts),) = seen
    assert (url.host, url.port, host) == ("127.0.0.1", server.port, "payments")
    assert timeouts == {"connect": 0.1, "read": 0.3, "write": 0.3, "pool": 0.3}
    # the request the response carries is the user's again
    assert response.request.url == "http://payments/"
    assert response.request.extensions["timeout"]["read"] == 10.0


def test_closing_the_client_closes_the_wrapped_transport(tmp_path: Path) -> None:
    closed: list[bool] = []

    class Inner(httpx.HTTPTransport):
        def close(self) -> None:
            closed.append(True)
            super().close()

    with serving("ok") as (server,), open_mesh(tmp_path, [server.port], policy()) as mesh:
        with mesh.httpx_client("payments", transport=Inner()) as client:
            client.get("/")
            assert server.open_connections == 1
        assert closed == [True]
        assert server.wait_open_connections(at_most=0) == 0


def test_an_unknown_upstream_is_refused(tmp_path: Path) -> None:
    with (
        serving("ok") as (server,),
        open_mesh(tmp_path, [server.port], policy()) as mesh,
        pytest.raises(UnknownUpstreamError, match=r"'paymnts'.*did you mean 'payments'"),
    ):
        mesh.httpx_client().get("http://paymnts/")
        with pytest.raises(UnknownUpstreamError, match="'orders'"):
            mesh.httpx_client("orders")
    assert server.count == 0


def test_a_url_without_host_is_refused_with_the_reason(tmp_path: Path) -> None:
    with (
        open_mesh(tmp_path, [free_port()], policy()) as mesh,
        pytest.raises(MeshError, match="'/charge' has no host"),
    ):
        mesh.httpx_client().get("/charge")


def test_use_after_close_raises_instead_of_hanging(tmp_path: Path) -> None:
    with serving("ok") as (server,):
        mesh = open_mesh(tmp_path, [server.port], policy())
        client = mesh.httpx_client("payments")
        own = httpx.Client(transport=MeshTransport(mesh), base_url="http://payments")
        assert own.get("/").status_code == 200
        mesh.close()
        with pytest.raises(RuntimeError, match="closed"):  # httpx's own: the mesh closed it
            client.get("/")
        with pytest.raises(MeshClosedError):  # a transport the mesh did not hand out
            own.get("/")
        (tmp_path / "again").mkdir()
        transport = MeshTransport(open_mesh(tmp_path / "again", [server.port], policy()))
        transport.close()
        with pytest.raises(MeshClosedError, match=r"transport .* is closed"):
            transport.handle_request(httpx.Request("GET", "http://payments/"))
    assert server.count == 1
