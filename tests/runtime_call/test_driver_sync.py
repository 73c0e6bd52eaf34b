"""The threaded driver against real sockets on 127.0.0.1, and its classifier."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus

import pytest
from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.drivers import CallFailed, call_async, call_sync, classify
from meshspec_runtime.policy.call import FailReason
from meshspec_runtime.policy.config import (
    BackoffConfig,
    CircuitBreakerConfig,
    LoadBalancerConfig,
    RetryConfig,
    Strategy,
    UpstreamPolicy,
)
from meshspec_runtime.policy.outcome import OutcomeKind
from meshspec_runtime.policy.upstream import UpstreamPolicies
from runtime_call_kit import endpoints
from support import free_port

FAST = BackoffConfig(base=0.001, max=0.005)


class PongServer:
    """A TCP server on 127.0.0.1 answering every connection with b"pong" (or never)."""

    def __init__(self, *, silent: bool = False) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)  # closing does not wake accept(): poll a stop flag
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.silent = silent
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.silent:
                self.held.append(conn)  # accept, never answer
                continue
            with conn:
                conn.sendall(b"pong")

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def server() -> Iterator[PongServer]:
    running = PongServer()
    yield running
    running.close()


def endpoint(endpoint_id: str, port: int) -> Endpoint:
    return Endpoint(id=endpoint_id, address="127.0.0.1", port=port)


def ping(ep: Endpoint, timeout: float) -> bytes:
    with socket.create_connection((ep.address, ep.port), timeout=timeout) as conn:
        data: bytes = conn.recv(4)
        return data


def test_a_refused_connection_is_retried_on_the_live_endpoint(server: PongServer) -> None:
    dead = endpoint("dead", free_port())
    up = UpstreamPolicies(
        UpstreamPolicy(
            retry=RetryConfig(attempts=2, backoff=FAST),
            load_balancer=LoadBalancerConfig(strategy=Strategy.ROUND_ROBIN),
        ),
        [dead, endpoint("live", server.port)],
        rng=random.Random(2),
    )
    tried: list[str] = []

    def traced(ep: Endpoint, timeout: float) -> bytes:
        tried.append(ep.id)
        return ping(ep, timeout)

    assert [call_sync(up, traced) for _ in range(6)] == [b"pong"] * 6
    assert "dead" in tried and tried.count("live") == 6


def test_an_attempt_timeout_is_retried(server: PongServer) -> None:
    silent = PongServer(silent=True)
    try:
        up = UpstreamPolicies(
            UpstreamPolicy(
                timeout=3.0,
                retry=RetryConfig(attempts=2, per_try_timeout=0.2, backoff=FAST),
                load_balancer=LoadBalancerConfig(strategy=Strategy.ROUND_ROBIN),
            ),
            [endpoint("silent", silent.port), endpoint("live", server.port)],
            rng=random.Random(0),
        )
        assert all(call_sync(up, ping) == b"pong" for _ in range(4))
    finally:
        silent.close()


def test_threads_share_one_upstream(server: PongServer) -> None:
    up = UpstreamPolicies(
        UpstreamPolicy(circuit_breaker=CircuitBreakerConfig(), concurrency_limit=64),
        [endpoint(f"live-{i}", server.port) for i in range(3)],
        rng=random.Random(0),
    )
    results: list[bytes] = []

    def client() -> None:
        results.extend(call_sync(up, ping) for _ in range(25))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [b"pong"] * 200
    assert [h.active for h in up.balancer.hosts] == [0, 0, 0]
    assert up.bulkhead is not None and up.bulkhead.in_use == 0


@dataclass
class Response:
    status_code: int


def test_call_failed_carries_the_reason_the_last_outcome_and_result() -> None:
    up = UpstreamPolicies(
        UpstreamPolicy(retry=RetryConfig(attempts=2, backoff=FAST)),
        endpoints(2),
        rng=random.Random(0),
    )
    with pytest.raises(CallFailed, match=r"attempts_exhausted \(last attempt: HTTP 503\)") as info:
        call_sync(up, lambda ep, timeout: Response(503))
    assert info.value.reason is FailReason.ATTEMPTS_EXHAUSTED
    assert info.value.last is not None and info.value.last.status == 503
    assert info.value.result == Response(503)
    with pytest.raises(CallFailed, match="not_retryable") as info:
        call_sync(up, lambda ep, timeout: int("x"))
    assert isinstance(info.value.__cause__, ValueError)
    assert call_sync(up, lambda ep, timeout: Response(404)) == Response(404)


class StatusError(Exception):
    """What ``raise_for_status()`` raises: an error carrying the response."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.response = Response(status)


def test_an_answer_raised_as_an_exception_and_not_retried_is_raised_again() -> None:
    up = UpstreamPolicies(
        UpstreamPolicy(retry=RetryConfig(attempts=2, backoff=FAST)),
        endpoints(2),
        rng=random.Random(0),
    )
    raised = StatusError(404)

    def attempt(ep: Endpoint, timeout: float) -> None:
        raise raised

    with pytest.raises(StatusError) as info:
        call_sync(up, attempt)
    assert info.value is raised

    async def async_attempt(ep: Endpoint, timeout: float) -> None:
        raise raised

    with pytest.raises(StatusError):
        asyncio.run(call_async(up, async_attempt))


def test_sleep_and_clock_are_injected() -> None:
    up = UpstreamPolicies(
        UpstreamPolicy(retry=RetryConfig(attempts=3, backoff=BackoffConfig(jitter="none"))),
        endpoints(3),
        rng=random.Random(0),
    )
    now = [100.0]
    slept: list[float] = []

    def sleep(delay: float) -> None:
        slept.append(delay)
        now[0] += delay

    def flaky(ep: Endpoint, timeout: float) -> str:
        if len(slept) < 2:
            raise ConnectionResetError()
        return ep.id

    with pytest.raises(CallFailed, match=r"not_retryable \(last attempt: reset\)"):
        call_sync(up, flaky, clock=lambda: now[0], sleep=sleep)  # reset is not in retry.on
    up = UpstreamPolicies(
        UpstreamPolicy(
            retry=RetryConfig(attempts=3, on=("reset",), backoff=BackoffConfig(jitter="none"))
        ),
        endpoints(3),
        rng=random.Random(0),
    )
    assert call_sync(up, flaky, clock=lambda: now[0], sleep=sleep).startswith("ep-")
    assert slept == [0.025, 0.05]


def test_an_exception_escaping_the_driver_cancels_the_call() -> None:
    up = UpstreamPolicies(
        UpstreamPolicy(concurrency_limit=1, retry=RetryConfig(backoff=FAST)),
        endpoints(2),
        rng=random.Random(0),
    )

    def interrupted(delay: float) -> None:
        raise KeyboardInterrupt

    def refused(ep: Endpoint, timeout: float) -> None:
        raise ConnectionRefusedError

    with pytest.raises(KeyboardInterrupt):
        call_sync(up, refused, sleep=interrupted)
    assert up.bulkhead is not None and up.bulkhead.in_use == 0
    assert call_sync(up, lambda ep, timeout: "next call gets the permit") == (
        "next call gets the permit"
    )


@pytest.mark.parametrize(
    ("value", "kind", "status"),
    [
        (ConnectionRefusedError(), OutcomeKind.CONNECT_FAILURE, None),
        (socket.gaierror(), OutcomeKind.CONNECT_FAILURE, None),
        (TimeoutError(), OutcomeKind.TIMEOUT, None),
        (TimeoutError(), OutcomeKind.TIMEOUT, None),
        (ConnectionResetError(), OutcomeKind.RESET, None),
        (BrokenPipeError(), OutcomeKind.RESET, None),
        (ValueError(), OutcomeKind.ERROR, None),
        ("plain", OutcomeKind.ANSWER, None),
        (Response(503), OutcomeKind.ANSWER, 503),
    ],
)
def test_default_classifier(value: object, kind: OutcomeKind, status: int | None) -> None:
    outcome = classify(value, 0.25)
    assert (outcome.kind, outcome.status, outcome.latency) == (kind, status, 0.25)


def test_classifier_reads_status_attributes_and_error_responses() -> None:
    class Urllib:
        status = 502

    class HttpError(Exception):
        response = Response(429)

    assert classify(Urllib(), 0.0).status == 502
    assert classify(HttpError(), 0.0).status == 429
    assert classify(HttpError(), 0.0).kind is OutcomeKind.ANSWER


def test_an_int_enum_status_is_a_status() -> None:
    # http.HTTPStatus is an int: a 503 given as HTTPStatus.SERVICE_UNAVAILABLE was taken for a
    # plain answer without status, so it was neither retried nor counted as a failure.
    class Enum503(Exception):
        response = Response(HTTPStatus.SERVICE_UNAVAILABLE)

    assert classify(Response(HTTPStatus.SERVICE_UNAVAILABLE), 0.0).status == 503
    assert type(classify(Response(HTTPStatus.SERVICE_UNAVAILABLE), 0.0).status) is int
    assert classify(Enum503(), 0.0).status == 503
    assert classify(Response(True), 0.0).status is None  # a bool is not a status
    up = UpstreamPolicies(
        UpstreamPolicy(retry=RetryConfig(attempts=2, backoff=FAST)),
        endpoints(2),
        rng=random.Random(0),
    )
    with pytest.raises(CallFailed, match=r"attempts_exhausted \(last attempt: HTTP 503\)"):
        call_sync(up, lambda ep, timeout: Response(HTTPStatus.SERVICE_UNAVAILABLE))


def test_a_retry_predicate_that_raises_releases_everything_once() -> None:
    # The predicate runs after the attempt's feedback: cancelling then released the host's
    # active count a second time (IndexError, masking the user's error) and kept the permit.
    def broken(outcome: object) -> bool:
        raise ValueError("predicate bug")

    up = UpstreamPolicies(
        UpstreamPolicy(concurrency_limit=1),
        endpoints(1),
        rng=random.Random(0),
        retry_predicate=broken,
    )
    with pytest.raises(ValueError, match="predicate bug"):
        call_sync(up, lambda ep, timeout: Response(404))
    assert [h.active for h in up.balancer.hosts] == [0]
    assert up.bulkhead is not None and up.bulkhead.in_use == 0


def test_a_raising_breaker_listener_does_not_release_the_attempt_twice() -> None:
    def listener(old: object, new: object, now: float) -> None:
        raise RuntimeError("listener bug")

    up = UpstreamPolicies(
        UpstreamPolicy(
            concurrency_limit=1,
            retry=RetryConfig(attempts=1),
            circuit_breaker=CircuitBreakerConfig(mode="consecutive", consecutive_failures=1),
        ),
        endpoints(1),
        rng=random.Random(0),
        breaker_listeners=(listener,),
    )
    with pytest.raises(RuntimeError, match="listener bug"):
        call_sync(up, lambda ep, timeout: Response(503))
    assert [h.active for h in up.balancer.hosts] == [0]
    assert up.bulkhead is not None and up.bulkhead.in_use == 0
