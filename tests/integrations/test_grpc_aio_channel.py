"""mesh.grpc_aio_channel(): grpc.aio clients against real loopback grpc servers via a bundle."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest
from grpc_servers import hang, ok, serving, status
from meshspec_runtime import CallFailed
from meshspec_runtime.events import EndpointsEjected
from meshspec_runtime.integrations.grpc import MeshRpcError
from meshspec_runtime.mesh import MeshClosedError
from meshspec_runtime.policy.call import FailReason
from meshspec_runtime.policy.outcome import OutcomeKind
from support import free_port
from test_grpc_channel import GRPC_ROUNDING, METHOD, PER_TRY, POLICY, open_mesh


def test_the_user_story_over_grpc_aio(tmp_path: Path) -> None:
    with serving(hang(), status(grpc.StatusCode.UNAVAILABLE), ok()) as (hung, failing, healthy):
        dead = free_port()
        mesh = open_mesh(tmp_path, [dead, hung.port, failing.port, healthy.port])
        ids = {e.port: e.id for e in mesh.upstream("payments").endpoints}
        ejected: list[str] = []
        mesh.on(EndpointsEjected, lambda event: ejected.extend(event.endpoints))

        async def scenario() -> list[bytes]:
            async with mesh:
                charge = mesh.grpc_aio_channel("payments").unary_unary(METHOD)
                return [await charge(b"order-%d" % n) for n in range(20)]

        answers = asyncio.run(scenario())
    assert answers == [b"%d:order-%d" % (healthy.port, n) for n in range(20)]
    assert set(ejected) == {ids[dead], ids[hung.port], ids[failing.port]}
    assert hung.requests and failing.requests and len(healthy.requests) == 20
    for seen in hung.requests + failing.requests + healthy.requests:
        assert seen.time_remaining is not None
        assert 0 < seen.time_remaining <= PER_TRY + GRPC_ROUNDING


def test_aio_failures_are_rpc_errors_and_statuses_pass_through(tmp_path: Path) -> None:
    with serving(status(grpc.StatusCode.NOT_FOUND)) as (missing,):
        mesh = open_mesh(tmp_path, [missing.port])

        async def scenario() -> grpc.RpcError:
            async with mesh:
                with pytest.raises(grpc.RpcError) as caught:
                    await mesh.grpc_aio_channel("payments").unary_unary(METHOD)(b"x")
                return caught.value

        error = asyncio.run(scenario())
    assert error.code() is grpc.StatusCode.NOT_FOUND and not isinstance(error, CallFailed)
    assert len(missing.requests) == 1


def test_aio_no_answer_raises_a_call_failed(tmp_path: Path) -> None:
    mesh = open_mesh(tmp_path, [free_port(), free_port()])

    async def scenario() -> MeshRpcError:
        async with mesh:
            with pytest.raises(MeshRpcError) as caught:
                await mesh.grpc_aio_channel("payments").unary_unary(METHOD)(b"x")
            return caught.value

    failed = asyncio.run(scenario())
    assert isinstance(failed, grpc.RpcError)
    assert failed.reason is FailReason.ATTEMPTS_EXHAUSTED
    assert failed.last is not None and failed.last.kind is OutcomeKind.CONNECT_FAILURE
    assert failed.code() is grpc.StatusCode.UNAVAILABLE


def test_an_aio_stream_is_one_attempt_and_gives_its_permit_back(tmp_path: Path) -> None:
    with serving(ok()) as (server,):
        mesh = open_mesh(tmp_path, [server.port], {**POLICY, "concurrency_limit": 1})

        async def scenario() -> tuple[list[bytes], FailReason, list[bytes]]:
            async with mesh:
                stream = mesh.grpc_aio_channel("payments").unary_stream("/shop.Payments/Stream")
                first = stream(b"s", timeout=2)
                with pytest.raises(MeshRpcError) as caught:
                    stream(b"s", timeout=2)
                responses = [r async for r in first]
                await asyncio.sleep(0.05)  # the status is recorded by a task
                again = [r async for r in stream(b"s", timeout=2)]
                return responses, caught.value.reason, again

        responses, refused, again = asyncio.run(scenario())
    assert responses == again == [b"%d:s" % server.port] * 3
    assert refused is FailReason.CONCURRENCY_LIMIT
    assert len(server.requests) == 2


def test_an_aio_channel_after_close(tmp_path: Path) -> None:
    mesh = open_mesh(tmp_path, [free_port()])

    async def scenario() -> None:
        channel = mesh.grpc_aio_channel("payments")
        await mesh.aclose()
        with pytest.raises(MeshClosedError):
            await channel.unary_unary(METHOD)(b"x")

    started = time.monotonic()
    asyncio.run(scenario())
    assert time.monotonic() - started < 1  # a clear error, not a hang
