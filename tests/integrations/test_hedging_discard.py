"""Every response a hedged call does not return is closed, through each HTTP client integration.

One instance answers 200 after a while, the other 503 at once, and ``non_fatal`` lists 503: a
call begun on the 503 hedges at once to the slow one; a call begun on the slow one hedges to
the 503 after the delay, then waits for the slow answer. Either way the 503 is an answer the
call does not return, read by nobody: left open, its connection stays checked out of the
client's pool (and open on the server) until the client closes, one more after every call.
Closed, the connection is dropped (or, read ahead, back in the pool and reused).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from http_servers import LoopbackServer, serving
from mesh_kit import compile_mesh
from meshspec_runtime import Mesh

SLOW = 0.3
CALLS = 4
POLICY: dict[str, Any] = {
    "timeout": "3s",
    "retry": {"attempts": 1, "per_try_timeout": "2s"},
    "load_balancer": {"strategy": "round_robin"},
    "hedge": {"delay": "50ms", "max_attempts": 2, "non_fatal": ["503"]},
}


def open_mesh(tmp_path: Path, servers: list[LoopbackServer]) -> Mesh:
    bundle = compile_mesh(tmp_path, {"payments": [s.port for s in servers]}, policy=POLICY)
    return Mesh.open(bundle, service="checkout")


def sync_httpx(mesh: Mesh, unavailable: LoopbackServer, settled: int) -> list[tuple[int, int]]:
    """(status returned, connections open on the 503 instance) after each call, client open;
    each count is read once at most ``settled`` are open, or after 2 s (the server notices a
    client's close a moment later)."""
    seen = []
    with mesh.httpx_client("payments") as client:
        for _ in range(CALLS):
            status = client.get("/").status_code
            seen.append((status, unavailable.wait_open_connections(settled)))
    return seen


def sync_requests(mesh: Mesh, unavailable: LoopbackServer, settled: int) -> list[tuple[int, int]]:
    seen = []
    with mesh.requests_session("payments") as session:
        for _ in range(CALLS):
            status = session.get("http://payments/").status_code
            seen.append((status, unavailable.wait_open_connections(settled)))
    return seen


def async_httpx(mesh: Mesh, unavailable: LoopbackServer, settled: int) -> list[tuple[int, int]]:
    async def calls() -> list[tuple[int, int]]:
        seen = []
        async with mesh.async_httpx_client("payments") as client:
            for _ in range(CALLS):
                status = (await client.get("/")).status_code
                await asyncio.sleep(0)  # a late answer's aclose() runs in a task of its own
                seen.append((status, await opened(unavailable, settled)))
        return seen

    return asyncio.run(calls())


def async_aiohttp(mesh: Mesh, unavailable: LoopbackServer, settled: int) -> list[tuple[int, int]]:
    async def calls() -> list[tuple[int, int]]:
        seen = []
        async with mesh.aiohttp_session("payments") as session:
            for _ in range(CALLS):
                async with session.get("/") as response:
                    status = response.status
                    await response.read()
                seen.append((status, await opened(unavailable, settled)))
        return seen

    return asyncio.run(calls())


async def opened(server: LoopbackServer, settled: int) -> int:
    """The server's open connections once it noticed closes (without blocking the loop)."""
    return await asyncio.to_thread(server.wait_open_connections, settled)


CLOSED_UNREAD = (0, CALLS)
"""(connections open on the 503 instance after each call, connections it accepted): each 503
was closed unread, so its connection was dropped and the next call made a new one."""
RELEASED = (1, 1)
"""aiohttp reads a short body ahead and puts the connection back in the pool before anyone
closes the response: one connection, idle between calls and reused by each."""


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        (sync_httpx, CLOSED_UNREAD),
        (sync_requests, CLOSED_UNREAD),
        (async_httpx, CLOSED_UNREAD),
        (async_aiohttp, RELEASED),
    ],
)
def test_answers_the_call_does_not_return_are_closed(
    tmp_path: Path, client: Any, expected: tuple[int, int]
) -> None:
    """A response left open would hold its connection: one more open after every call."""
    open_after_each, accepted = expected
    with serving("slow", 503, delay=SLOW) as (slow, unavailable):
        mesh = open_mesh(tmp_path, [slow, unavailable])
        try:
            seen = client(mesh, unavailable, open_after_each)
        finally:
            mesh.close()
    assert seen == [(200, open_after_each)] * CALLS
    assert unavailable.count == CALLS  # every call had its 503 (first try or hedge)
    assert unavailable.connections_accepted == accepted
