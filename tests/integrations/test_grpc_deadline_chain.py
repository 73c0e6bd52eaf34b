"""Deadline propagation through three real grpc services, A -> B -> C: A's caller gives 1 s;
A and B serve behind the deadline interceptors and call on through mesh channels whose policy
alone would allow 2 s per try; C sees what is left of the 1 s, and gives up in time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from grpc_servers import Instance, behaving, grpc_server, hang
from mesh_kit import DEFAULT_POLICY, compile_mesh
from meshspec_runtime import Mesh
from meshspec_runtime.deadline import time_left
from meshspec_runtime.integrations.grpc import (
    AioDeadlineServerInterceptor,
    DeadlineServerInterceptor,
)

POLICY_PER_TRY = 2.0
POLICY: dict[str, Any] = {
    **DEFAULT_POLICY,
    "timeout": "5s",
    "retry": {**DEFAULT_POLICY["retry"], "attempts": 1, "per_try_timeout": "2s"},
}
METHOD = "/shop.Chain/Call"
SLACK = 0.2
"""Scheduling on a busy 2-core machine, and grpc's rounding of grpc-timeout."""


def mesh_for(folder: Path, caller: str, upstream: str, port: int) -> Mesh:
    folder.mkdir()
    bundle = compile_mesh(folder, {upstream: [port]}, policy=POLICY, protocol="grpc", caller=caller)
    return Mesh.open(bundle, service=caller)


def forwarding(mesh: Mesh, upstream: str) -> Callable[[Instance], Any]:
    """A handler that calls ``upstream`` through ``mesh`` while serving."""
    channel = mesh.grpc_channel(upstream)

    def make(instance: Instance) -> Any:
        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            try:
                response: bytes = channel.unary_unary(METHOD)(request)
                return response
            except grpc.RpcError as error:
                context.abort(error.code(), f"{upstream}: {error.details()}")
                raise

        return handle

    return make


def test_the_callers_deadline_reaches_the_third_service(tmp_path: Path) -> None:
    interceptors = [DeadlineServerInterceptor()]
    with grpc_server(lambda instance: behaving(instance, hang())) as c:
        mesh_b = mesh_for(tmp_path / "b", "b", "c", c.port)
        with mesh_b, grpc_server(forwarding(mesh_b, "c"), interceptors) as b:
            mesh_a = mesh_for(tmp_path / "a", "a", "b", b.port)
            with mesh_a, grpc_server(forwarding(mesh_a, "b"), interceptors) as a:
                started = time.monotonic()
                with grpc.insecure_channel(f"127.0.0.1:{a.port}") as channel:
                    try:
                        channel.unary_unary(METHOD)(b"x", timeout=1.0)
                        raise AssertionError("a hung C cannot answer")
                    except grpc.RpcError as error:
                        code = error.code()
                took = time.monotonic() - started
                time.sleep(0.1)  # C notices its caller is gone
    assert code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert took < 1.0 + SLACK
    (seen_by_b,) = b.requests
    (seen_by_c,) = c.requests
    assert seen_by_b.time_remaining is not None and seen_by_c.time_remaining is not None
    # Each hop gets what is left of the caller's 1 s, not B's 2 s per try. grpc rounds the
    # grpc-timeout it encodes up, by more than the few milliseconds a hop takes (C saw 1.0095 s
    # where B had 0.9995 s), so a decrease from hop to hop cannot be seen on the wire: each
    # budget is bounded by the caller's, and C gives up in time (below).
    assert seen_by_b.time_remaining <= 1.0 + SLACK < POLICY_PER_TRY
    assert seen_by_c.time_remaining <= 1.0 + SLACK
    (waited,) = c.gave_up_after
    assert waited < 1.0 + SLACK


def test_the_aio_interceptor_sets_the_deadline_while_serving() -> None:
    seen: list[float | None] = []

    async def handle(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        seen.append(time_left())
        return request

    async def scenario() -> bytes:
        server = grpc.aio.server(interceptors=[AioDeadlineServerInterceptor()])
        handler = grpc.method_handlers_generic_handler(
            "shop.Chain", {"Call": grpc.unary_unary_rpc_method_handler(handle)}
        )
        server.add_generic_rpc_handlers([handler])
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                answer: bytes = await channel.unary_unary(METHOD)(b"hi", timeout=0.8)
                await channel.unary_unary(METHOD)(b"no deadline")
                return answer
        finally:
            await server.stop(None)

    assert asyncio.run(scenario()) == b"hi"
    with_deadline, without = seen
    assert with_deadline is not None and 0 < with_deadline <= 0.8 + SLACK
    assert without is None
