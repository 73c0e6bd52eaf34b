"""mesh.aiohttp_session(): real aiohttp clients against real loopback servers through a bundle."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp_servers import Instance, hang, ok, serving, status
from mesh_kit import DEFAULT_POLICY, compile_mesh
from meshspec_runtime import CallFailed, Mesh
from meshspec_runtime.deadline import TIMEOUT_HEADER
from meshspec_runtime.events import EndpointsEjected
from meshspec_runtime.integrations.aiohttp import MeshClientError
from meshspec_runtime.mesh import MeshClosedError, MeshError, UnknownUpstreamError
from meshspec_runtime.policy.call import FailReason
from meshspec_runtime.policy.outcome import OutcomeKind
from support import free_port

PER_TRY = 0.3
POLICY: dict[str, Any] = {
    **DEFAULT_POLICY,
    "retry": {
        # 3 bad instances x 2 failures each (the outlier threshold) are at most 6 failed
        # attempts in all, whatever order round robin visits them in: 7 always reach the good one
        "attempts": 7,
        "per_try_timeout": f"{int(PER_TRY * 1000)}ms",
        "backoff": {"base": "1ms", "max": "5ms"},
        "on": ["connect-failure", "timeout", "reset", "5xx"],
    },
    "outlier_detection": {
        "consecutive_failures": 2,
        "base_ejection": "30s",
        "max_ejected": "75%",
    },
    "load_balancer": {"strategy": "round_robin", "panic_threshold": 0},
}


def open_mesh(tmp_path: Path, ports: list[int], policy: dict[str, Any] = POLICY) -> Mesh:
    bundle = compile_mesh(tmp_path, {"payments": ports}, policy=policy)
    return Mesh.open(bundle, service="checkout")


def endpoint_ids(mesh: Mesh) -> dict[int, str]:
    return {endpoint.port: endpoint.id for endpoint in mesh.upstream("payments").endpoints}


def test_the_user_story_dead_hung_and_503_instances_are_retried_and_ejected(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with serving(hang(), status(503), ok()) as (hung, failing, healthy):
            dead = free_port()
            mesh = open_mesh(tmp_path, [dead, hung.port, failing.port, healthy.port])
            ids = endpoint_ids(mesh)
            ejected: list[str] = []
            mesh.on(EndpointsEjected, lambda event: ejected.extend(event.endpoints))
            async with mesh, mesh.aiohttp_session("payments") as session:
                for _ in range(20):
                    async with session.post("/charge", json={"amount": 5}) as response:
                        assert response.status == 200
                        assert await response.text() == f"ok {healthy.port}"
                        assert response.url.host == "payments"  # what the user asked for
                policies = mesh.upstream("payments").policies
                assert policies.outlier is not None
                still_out = policies.outlier.ejected(time.monotonic())
            expected = {ids[dead], ids[hung.port], ids[failing.port]}
            assert set(ejected) == expected
            assert still_out == expected
            assert len(healthy.requests) == 20
            assert hung.requests and failing.requests  # tried, then retried elsewhere
            for seen in hung.requests + failing.requests + healthy.requests:
                assert seen.headers["Host"] == "payments"
                assert seen.body == b'{"amount": 5}'
                assert 0 < int(seen.headers[TIMEOUT_HEADER]) <= PER_TRY * 1000

    asyncio.run(scenario())


def test_a_generator_body_is_buffered_and_resent_on_retry(tmp_path: Path) -> None:
    chunks = [b"first,", b"second,", b"third"]

    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    async def scenario() -> None:
        async with serving(status(503), ok()) as (failing, healthy):
            mesh = open_mesh(tmp_path, [failing.port, healthy.port])
            async with mesh, mesh.aiohttp_session("payments") as session:
                for _ in range(4):
                    async with session.post("/upload", data=body()) as response:
                        assert response.status == 200
            assert failing.requests, "round robin sends some first attempts to the 503"
            for seen in failing.requests + healthy.requests:
                assert seen.body == b"".join(chunks)
            assert len(healthy.requests) == 4

    asyncio.run(scenario())


def test_an_exhausted_503_is_returned_unread_and_retried_answers_are_closed(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        big = 4 * 1024 * 1024  # not read with the headers: the connection stays busy
        async with serving(status(503, big), status(503, big), status(503, big)) as instances:
            mesh = open_mesh(tmp_path, [instance.port for instance in instances])
            async with mesh, mesh.aiohttp_session("payments") as session:
                response = await session.get("/charge")
                assert response.status == 503
                attempts = sum(len(instance.requests) for instance in instances)
                assert attempts == POLICY["retry"]["attempts"]
                await asyncio.sleep(0.1)  # let the servers see the closes
                # only the returned (unread) answer holds a connection
                assert open_connections(instances) == 1
                assert (await response.content.read(7)) == b"status "  # streams
                response.close()
                await asyncio.sleep(0.1)
                assert open_connections(instances) == 0

    asyncio.run(scenario())


def open_connections(instances: list[Instance]) -> int:
    return sum(instance.open_connections for instance in instances)


def test_no_response_at_all_raises_an_aiohttp_error_that_is_a_call_failed(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        mesh = open_mesh(tmp_path, [free_port(), free_port()])
        async with mesh, mesh.aiohttp_session() as session:
            with pytest.raises(aiohttp.ClientConnectionError) as caught:
                await session.get("http://payments/charge")
        failed = caught.value
        assert isinstance(failed, MeshClientError) and isinstance(failed, CallFailed)
        assert failed.reason is FailReason.ATTEMPTS_EXHAUSTED
        assert failed.last is not None and failed.last.kind is OutcomeKind.CONNECT_FAILURE
        assert isinstance(failed.__cause__, aiohttp.ClientConnectorError)

    asyncio.run(scenario())


def test_an_open_breaker_refuses_without_an_attempt(tmp_path: Path) -> None:
    policy = {
        **POLICY,
        "retry": {**POLICY["retry"], "attempts": 1},
        "circuit_breaker": {"mode": "consecutive", "consecutive_failures": 2, "open_for": "30s"},
    }

    async def scenario() -> None:
        mesh = open_mesh(tmp_path, [free_port()], policy)
        async with mesh, mesh.aiohttp_session("payments") as session:
            reasons = []
            for _ in range(4):
                with pytest.raises(MeshClientError) as caught:
                    await session.get("/charge")
                reasons.append(caught.value.reason)
        assert reasons[-1] is FailReason.BREAKER_OPEN
        assert caught.value.__cause__ is None  # refused: no attempt was made

    asyncio.run(scenario())


def test_the_hash_on_header_keys_the_pick(tmp_path: Path) -> None:
    policy = {**POLICY, "load_balancer": {"strategy": "ring_hash", "hash_on": "x-user"}}

    async def scenario() -> None:
        async with serving(ok(), ok(), ok()) as instances:
            mesh = open_mesh(tmp_path, [instance.port for instance in instances], policy)
            async with mesh, mesh.aiohttp_session("payments") as session:
                for user in ("ann", "bob", "cy", "dee"):
                    for _ in range(3):
                        async with session.get("/", headers={"x-user": user}) as response:
                            assert response.status == 200
            for instance in instances:
                users = {seen.headers["x-user"] for seen in instance.requests}
                for user in users:  # every request of a user went to one instance
                    assert [s.headers["x-user"] for s in instance.requests].count(user) == 3

    asyncio.run(scenario())


def test_misuse_gets_clear_errors(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(ok()) as (healthy,):
            mesh = open_mesh(tmp_path, [healthy.port])
            with pytest.raises(UnknownUpstreamError, match="no upstream 'paymnts'"):
                mesh.aiohttp_session("paymnts")
            async with mesh.aiohttp_session() as session:
                with pytest.raises(UnknownUpstreamError, match="did you mean 'payments'"):
                    await session.get("http://paymnts/charge")
                with pytest.raises(aiohttp.InvalidUrlClientError):
                    await session.get("/charge")  # no host: no upstream named
                mesh.close()  # a sync close leaves the session open; the mesh refuses
                with pytest.raises(MeshClosedError):
                    await session.get("http://payments/charge")
            assert healthy.requests == []
            with pytest.raises(MeshError):
                mesh.aiohttp_session("payments")

    asyncio.run(scenario())


def test_aclose_closes_the_session(tmp_path: Path) -> None:
    async def scenario() -> None:
        mesh = open_mesh(tmp_path, [free_port()])
        session = mesh.aiohttp_session("payments")
        await mesh.aclose()
        assert session.closed
        with pytest.raises(RuntimeError, match="closed"):
            await session.get("/charge")

    asyncio.run(scenario())
