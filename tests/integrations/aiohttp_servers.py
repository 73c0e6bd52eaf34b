"""Loopback HTTP servers for the aiohttp integration tests: aiohttp.web apps that answer, answer
a status, answer slowly, hang, or reset the connection, and record what they saw."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Behaviour:
    kind: str
    """ok | status | slow | hang | reset"""
    status: int = 200
    delay: float = 0.0
    padding: int = 0
    """Bytes added to the body: a large body stays unread in the client's socket."""


def ok() -> Behaviour:
    return Behaviour("ok")


def status(code: int, padding: int = 0) -> Behaviour:
    return Behaviour("status", status=code, padding=padding)


def slow(delay: float) -> Behaviour:
    return Behaviour("slow", delay=delay)


def hang() -> Behaviour:
    return Behaviour("hang")


def reset() -> Behaviour:
    return Behaviour("reset")


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Instance:
    behaviour: Behaviour
    port: int = 0
    requests: list[Seen] = field(default_factory=list)
    runner: web.AppRunner | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def open_connections(self) -> int:
        assert self.runner is not None and self.runner.server is not None
        return len(self.runner.server.connections)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Seen(request.method, request.path, dict(request.headers), body))
        kind = self.behaviour.kind
        if kind == "hang":
            await self.stop.wait()  # until the test ends: the client must give up first
        elif kind == "slow":
            await asyncio.sleep(self.behaviour.delay)
        elif kind == "reset":
            transport = request.transport
            assert transport is not None
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()  # linger 0: the client gets a TCP RST
            await asyncio.sleep(0.05)
        text = f"{kind} {self.port}" + "." * self.behaviour.padding
        return web.Response(status=self.behaviour.status, text=text)


@asynccontextmanager
async def serving(*behaviours: Behaviour) -> AsyncIterator[list[Instance]]:
    """One server per behaviour on 127.0.0.1 (a free port each), stopped on exit."""
    instances = [Instance(behaviour) for behaviour in behaviours]
    async with AsyncExitStack() as stack:
        for instance in instances:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", instance.handle)
            runner = web.AppRunner(app, shutdown_timeout=0.2, access_log=None)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            stack.callback(instance.stop.set)
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            instance.runner = runner
            instance.port = runner.addresses[0][1]
        yield instances
