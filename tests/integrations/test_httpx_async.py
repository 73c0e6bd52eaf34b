"""The asyncio httpx integration (``mesh.async_httpx_client``) against real loopback servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, TypeVar

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
from meshspec_runtime.integrations.httpx import AsyncMeshTransport
from support import free_port

T = TypeVar("T")
PER_TRY_MS = 300


def run(awaitable: Awaitable[T]) -> T:
    async def main() -> T:
        return await awaitable

    return asyncio.run(main())


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


def test_user_story_dead_hung_and_503_instances_are_retried_then_ejected(
    tmp_path: Path,
) -> None:
    settings = policy(
        outlier_detection={"consecutive_failures": 2, "base_ejection": "30s", "max_ejected": "75%"},
        load_balancer={"strategy": "round_robin", "panic_threshold": "0%"},
        retry={**policy()["retry"], "attempts": 7},
    )
    ejected: list[str] = []

    async def calls(mesh: Mesh) -> list[int]:
        async with mesh.async_httpx_client("payments") as client:
            return [(await client.post("/charge", json={"n": n})).status_code for n in range(20)]

    with serving("hang", 503, "ok") as (hung, overloaded, healthy):
        ports = [free_port(), hung.port, overloaded.port, healthy.port]
        mesh = open_mesh(tmp_path, ports, settings)
        mesh.on(EndpointsEjected, lambda event: ejected.extend(event.endpoints))
        statuses = run(calls(mesh))
        run(mesh.aclose())
    assert statuses == [200] * 20
    assert sorted(ejected) == ["payments-0", "payments-1", "payments-2"]
    assert hung.count == 2 and overloaded.count == 2
    assert healthy.count == 20
    assert all(req.host == "payments" for req in healthy.requests)
    headers = [h for server in (hung, overloaded, healthy) for h in server.timeout_headers]
    assert all(h is not None and 0 < int(h) <= PER_TRY_MS for h in headers)


def test_a_streamed_body_is_buffered_and_resent_on_retry(tmp_path: Path) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first-"
        yield b"second"

    async def call(mesh: Mesh) -> int:
        async with mesh.async_httpx_client("payments") as client:
            return (await client.post("/charge", content=chunks())).status_code

    with (
        serving(503) as (overloaded,),
        open_mesh(tmp_path, [overloaded.port], policy()) as mesh,
    ):
        assert run(call(mesh)) == 503
    assert overloaded.bodies == [b"first-second"] * 4


def test_retried_answers_are_closed_and_leave_no_connection_open(tmp_path: Path) -> None:
    async def calls(mesh: Mesh) -> list[int]:
        async with mesh.async_httpx_client("payments") as client:
            statuses = [(await client.get("/")).status_code for _ in range(10)]
            assert overloaded.wait_open_connections(at_most=0) == 0
            assert healthy.open_connections <= 1
            return statuses

    with (
        serving(503, "ok") as (overloaded, healthy),
        open_mesh(tmp_path, [overloaded.port, healthy.port], policy()) as mesh,
    ):
        assert run(calls(mesh)) == [200] * 10
    assert overloaded.count >= 9  # round robin: every call (but maybe the first) meets it


def test_a_hung_instance_raises_an_httpx_timeout_that_is_call_failed(tmp_path: Path) -> None:
    settings = policy(retry={"attempts": 2, "per_try_timeout": "200ms", "on": ["timeout"]})

    async def call(mesh: Mesh) -> None:
        async with mesh.async_httpx_client("payments") as client:
            await client.get("/")

    with (
        serving("hang") as (hung,),
        open_mesh(tmp_path, [hung.port], settings) as mesh,
        pytest.raises(httpx.TimeoutException) as raised,
    ):
        run(call(mesh))
    assert isinstance(raised.value, CallFailed)
    assert raised.value.reason is FailReason.ATTEMPTS_EXHAUSTED
    assert raised.value.last is not None and raised.value.last.kind is OutcomeKind.TIMEOUT
    assert hung.count == 2


def test_refused_everywhere_raises_an_httpx_connect_error(tmp_path: Path) -> None:
    async def call(mesh: Mesh) -> None:
        async with mesh.async_httpx_client("payments") as client:
            await client.get("/")

    with (
        open_mesh(tmp_path, [free_port(), free_port()], policy()) as mesh,
        pytest.raises(httpx.ConnectError) as raised,
    ):
        run(call(mesh))
    assert isinstance(raised.value, CallFailed)
    assert raised.value.last is not None
    assert raised.value.last.kind is OutcomeKind.CONNECT_FAILURE
    assert isinstance(raised.value.__cause__, httpx.ConnectError)


def test_a_streamed_response_is_returned_unread(tmp_path: Path) -> None:
    async def call(mesh: Mesh) -> bytes:
        async with (
            mesh.async_httpx_client("payments") as client,
            client.stream("GET", "/") as response,
        ):
            assert response.status_code == 200
            assert not response.is_stream_consumed
            return await response.aread()

    with (
        serving(503, "ok") as servers,
        open_mesh(tmp_path, [s.port for s in servers], policy()) as mesh,
    ):
        assert run(call(mesh)) == b"ok"


def test_misuse_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    async def misuse(mesh: Mesh) -> None:
        async with mesh.async_httpx_client() as client:
            with pytest.raises(UnknownUpstreamError, match="'orders'"):
                await client.get("http://orders/")
            with pytest.raises(MeshError, match="has no host"):
                await client.get("/charge")
        transport = AsyncMeshTransport(mesh)
        own = httpx.AsyncClient(transport=transport, base_url="http://payments")
        assert (await own.get("/")).status_code == 200
        await mesh.aclose()
        with pytest.raises(MeshClosedError):
            await own.get("/")
        await transport.aclose()
        with pytest.raises(MeshClosedError, match="closed"):
            await transport.handle_async_request(httpx.Request("GET", "http://payments/"))

    with serving("ok") as (server,):
        run(misuse(open_mesh(tmp_path, [server.port], policy())))
    assert server.count == 1
