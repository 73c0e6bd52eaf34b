"""``urllib.request.urlopen`` driven through ``mesh.upstream(name).call``: its errors (an
``HTTPError`` for a 503, a ``URLError`` around a refused connection, a bare ``TimeoutError``
for a read timeout) are classified by ``integrations.urllib`` and retried per the bundle."""

from __future__ import annotations

import urllib.error
import urllib.request
from http.client import HTTPResponse
from pathlib import Path
from typing import Any

import pytest
from http_servers import serving
from mesh_kit import compile_mesh
from meshspec_runtime import CallFailed, Endpoint, FailReason, Mesh, OutcomeKind
from support import free_port


def policy(attempts: int, on: list[str]) -> dict[str, Any]:
    return {
        "timeout": "3s",
        "retry": {
            "attempts": attempts,
            "per_try_timeout": "200ms",
            "backoff": {"base": "1ms", "max": "2ms"},
            "on": on,
        },
        "load_balancer": {"strategy": "round_robin"},
    }


def open_mesh(tmp_path: Path, ports: list[int], settings: dict[str, Any]) -> Mesh:
    return Mesh.open(
        compile_mesh(tmp_path, {"payments": ports}, policy=settings), service="checkout"
    )


def fetch(endpoint: Endpoint, timeout: float) -> HTTPResponse:
    url = f"http://{endpoint.address}:{endpoint.port}/charge"
    response: HTTPResponse = urllib.request.urlopen(url, timeout=timeout)
    return response


def close(response: HTTPResponse) -> None:
    response.close()


def test_a_503_raised_as_http_error_is_retried_on_another_instance(tmp_path: Path) -> None:
    with (
        serving(503, "ok") as (overloaded, healthy),
        open_mesh(tmp_path, [overloaded.port, healthy.port], policy(3, ["5xx"])) as mesh,
    ):
        payments = mesh.upstream("payments")
        for _ in range(5):
            with payments.call(fetch, discard=close) as response:
                assert (response.status, response.read()) == (200, b"ok")
    assert healthy.count == 5
    assert overloaded.count >= 4  # round robin: every call (but maybe the first) meets it


def test_a_503_on_every_attempt_fails_the_call_with_the_http_error_as_cause(
    tmp_path: Path,
) -> None:
    with (
        serving(503) as (overloaded,),
        open_mesh(tmp_path, [overloaded.port], policy(3, ["5xx"])) as mesh,
        pytest.raises(CallFailed) as raised,
    ):
        mesh.upstream("payments").call(fetch)
    assert raised.value.reason is FailReason.ATTEMPTS_EXHAUSTED
    assert raised.value.last is not None
    assert (raised.value.last.kind, raised.value.last.status) == (OutcomeKind.ANSWER, 503)
    assert isinstance(raised.value.__cause__, urllib.error.HTTPError)
    assert overloaded.count == 3


def test_a_refused_connection_is_a_connect_failure(tmp_path: Path) -> None:
    with (
        open_mesh(tmp_path, [free_port()], policy(2, ["connect-failure"])) as mesh,
        pytest.raises(CallFailed) as raised,
    ):
        mesh.upstream("payments").call(fetch)
    assert raised.value.reason is FailReason.ATTEMPTS_EXHAUSTED  # retried: connect-failure
    assert raised.value.last is not None
    assert raised.value.last.kind is OutcomeKind.CONNECT_FAILURE
    assert isinstance(raised.value.__cause__, urllib.error.URLError)


def test_a_read_timeout_is_a_timeout(tmp_path: Path) -> None:
    with (
        serving("hang") as (hung,),
        open_mesh(tmp_path, [hung.port], policy(2, ["timeout"])) as mesh,
        pytest.raises(CallFailed) as raised,
    ):
        mesh.upstream("payments").call(fetch)
    assert raised.value.reason is FailReason.ATTEMPTS_EXHAUSTED  # retried: timeout
    assert raised.value.last is not None and raised.value.last.kind is OutcomeKind.TIMEOUT
    assert hung.count == 2


def test_a_reset_is_a_reset(tmp_path: Path) -> None:
    with (
        serving("reset") as (resetting,),
        open_mesh(tmp_path, [resetting.port], policy(2, ["reset"])) as mesh,
        pytest.raises(CallFailed) as raised,
    ):
        mesh.upstream("payments").call(fetch)
    assert raised.value.reason is FailReason.ATTEMPTS_EXHAUSTED  # retried: reset
    assert raised.value.last is not None and raised.value.last.kind is OutcomeKind.RESET
    assert resetting.count == 2
