"""CPU cost per request of each client integration, against the same client without meshspec.

Every pair of contenders sends GET requests to the same fast loopback HTTP server, which runs
in a separate process so that its CPU time is not counted:

- ``plain``: the client calling the server's address directly, with a timeout equal to the
  bundle's per-try timeout (as a service would set one: a socket with a timeout polls before
  each read, so a client without one would be cheaper for a reason unrelated to meshspec);
- ``meshspec``: the same client from the integration (``mesh.httpx_client("payments")``, ...),
  through a bundle whose upstream ``payments`` has one instance at that address, with retries,
  per-try timeout, outlier detection and a least-request balancer.

Time is the process's CPU time (``time.process_time_ns``: client threads and the event loop
included, the server excluded) per request. Rounds of ``--requests`` requests are interleaved
(plain, meshspec, plain, meshspec, ...); before each round the garbage collector runs and is
then disabled until the round ends, for every contender alike. Printed per pair: the median and
range over rounds of each contender, and the median (and range) of the per-round ratio
meshspec / plain. The issue's target is a ratio of at most 1.05 for httpx and requests.

    python benchmarks/clients.py [--requests 1000] [--rounds 9] [--no-network]

``--no-network`` replaces the server by canned answers at each client's last stage (httpx's
``MockTransport``, an ``HTTPAdapter`` whose ``send`` answers at once): the ratio is then the
integration's own cost against the client's, free of the sockets' noise.

A new client is one more :class:`Pair` in :func:`pairs` (aiohttp, grpc: an async or sync
``Contender`` for each side).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import requests
import requests.adapters
import yaml
from meshspec_runtime import Mesh, is_compiled
from meshspec_runtime.integrations.requests import MeshAdapter

from meshspec.compile.api import compile_spec

RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    b"Connection: keep-alive\r\n\r\nok"
)
PER_TRY_TIMEOUT = 2.0
POLICY: dict[str, Any] = {
    "timeout": "5s",
    "retry": {
        "attempts": 3,
        "per_try_timeout": f"{PER_TRY_TIMEOUT}s",
        "on": ["connect-failure", "timeout", "5xx"],
    },
    "outlier_detection": {"consecutive_failures": 5, "base_ejection": "30s"},
    "load_balancer": {"strategy": "least_request"},
}


# -- the server (its own process) -------------------------------------------------------------


class _Answering(asyncio.Protocol):
    """Answers every request head with the same 200 (the benchmark's requests have no body)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        self.pending += data
        answers = self.pending.count(b"\r\n\r\n")
        if answers:
            self.pending = self.pending.rsplit(b"\r\n\r\n", 1)[1]
            self.transport.write(RESPONSE * answers)


def _serve(ready: Connection) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Answering, "127.0.0.1", 0)
        ready.send(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()  # until the parent terminates this process

    asyncio.run(main())


@contextmanager
def server_process() -> Iterator[int]:
    """A loopback server in a child process; yields its port, stops it at the end."""
    receiver, sender = multiprocessing.Pipe(duplex=False)
    process = multiprocessing.get_context("spawn").Process(target=_serve, args=(sender,))
    process.start()
    try:
        if not receiver.poll(30):
            raise RuntimeError("the benchmark server did not start within 30 s")
        yield int(receiver.recv())
    finally:
        process.terminate()
        process.join(5)


# -- contenders ---------------------------------------------------------------------------


@dataclass
class Contender:
    """``run(n)`` sends ``n`` requests and checks the answers; ``close()`` releases it."""

    run: Callable[[int], None]
    close: Callable[[], None]


@dataclass
class Pair:
    name: str
    plain: Callable[[int, Mesh, asyncio.AbstractEventLoop], Contender]
    meshspec: Callable[[int, Mesh, asyncio.AbstractEventLoop], Contender]


def _sync(get: Callable[[], Any], close: Callable[[], None]) -> Contender:
    def run(n: int) -> None:
        for _ in range(n):
            response = get()
            if response.status_code != 200:
                raise RuntimeError(f"unexpected answer {response.status_code}")

    return Contender(run, close)


def _async(
    loop: asyncio.AbstractEventLoop,
    get: Callable[[], Awaitable[Any]],
    close: Callable[[], Awaitable[None]],
) -> Contender:
    async def requests_(n: int) -> None:
        for _ in range(n):
            response = await get()
            if response.status_code != 200:
                raise RuntimeError(f"unexpected answer {response.status_code}")

    return Contender(
        lambda n: loop.run_until_complete(requests_(n)),
        lambda: loop.run_until_complete(close()),
    )


def _plain_httpx(port: int, mesh: Mesh, loop: asyncio.AbstractEventLoop) -> Contender:
    base_url = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=base_url, timeout=PER_TRY_TIMEOUT, trust_env=False)
    return _sync(lambda: client.get("/"), client.close)


def _mesh_httpx(port: int, mesh: Mesh, loop: asyncio.AbstractEventLoop) -> Contender:
    client = mesh.httpx_client("payments")
    return _sync(lambda: client.get("/"), client.close)


def _plain_httpx_async(port: int, mesh: Mesh, loop: asyncio.AbstractEventLoop) -> Contender:
    base_url = f"http://127.0.0.1:{port}"
    client = httpx.AsyncClient(base_url=base_url, timeout=PER_TRY_TIMEOUT, trust_env=False)
    return _async(loop, lambda: client.get("/"), client.aclose)


def _mesh_httpx_async(port: int, mesh: Mesh, loop: asyncio.AbstractEventLoop) -> Contender:
    client = mesh.async_httpx_client("payments")
    return _async(loop, lambda: client.get("/"), client.aclose)


def _plain_requests(port: int, mesh: Mesh, loop: asyncio.AbstractEventLoop) -> Contender:
    session = requests.Session()
    session.trust_env = False  # as the mesh's session: no proxy or netrc lookups per request
    url = f"http://127.0.0.1:{port}/"
    return _sync(lambda: session.get(url, timeout=PER_TRY_TIMEOUT), session.close)


def _mesh_requests(port: int, mesh: Mesh, loop: asyncio.AbstractEventLoop) -> Contender:
    session = mesh.requests_session("payments")
    return _sync(lambda: session.get("/"), session.close)


# No network (``--no-network``): each client's last stage answers at once, so the figures
# are the integration's own CPU cost, without the sockets' noise.


def _canned(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"ok")


class _CannedAdapter(requests.adapters.HTTPAdapter):
    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        response = requests.Response()
        response.status_code, response._content, response.request = 200, b"ok", request
        response.url = request.url or ""
        return response


class _CannedMeshAdapter(MeshAdapter, _CannedAdapter):
    """``MeshAdapter`` whose attempts (``super().send``) are the canned adapter's."""


def _plain_httpx_canned(port: int, mesh: Mesh, loop: asyncio.AbstractEventLoop) -> Contender:
    client = httpx.Client(transport=httpx.MockTransport(_canned), base_url="http://127.0.0.1")
    return _sync(lambda: client.get("/"), client.close)


def _mesh_httpx_canned(port: int, mesh: Mesh, loop: asyncio.AbstractEventLoop) -> Contender:
    client = mesh.httpx_client("payments", transport=httpx.MockTransport(_canned))
    return _sync(lambda: client.get("/"), client.close)


def _plain_httpx_async_canned(port: int, mesh: Mesh, loop: asyncio.AbstractEventLoop) -> Contender:
    transport = httpx.MockTransport(_canned)
    client = httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")
    return _async(loop, lambda: client.get("/"), client.aclose)


def _mesh_httpx_async_canned(port: int, mesh: Mesh, loop: asyncio.AbstractEventLoop) -> Contender:
    client = mesh.async_httpx_client("payments", transport=httpx.MockTransport(_canned))
    return _async(loop, lambda: client.get("/"), client.aclose)


def _plain_requests_canned(port: int, mesh: Mesh, loop: asyncio.AbstractEventLoop) -> Contender:
    session = requests.Session()
    session.trust_env = False  # as the mesh's session: no proxy or netrc lookups per request
    session.mount("http://", _CannedAdapter())
    return _sync(lambda: session.get("http://127.0.0.1/", timeout=PER_TRY_TIMEOUT), session.close)


def _mesh_requests_canned(port: int, mesh: Mesh, loop: asyncio.AbstractEventLoop) -> Contender:
    session = mesh.requests_session("payments")
    session.mount("http://", _CannedMeshAdapter(mesh))
    return _sync(lambda: session.get("/"), session.close)


def pairs(network: bool = True) -> list[Pair]:
    if not network:
        return [
            Pair("httpx", _plain_httpx_canned, _mesh_httpx_canned),
            Pair("httpx async", _plain_httpx_async_canned, _mesh_httpx_async_canned),
            Pair("requests", _plain_requests_canned, _mesh_requests_canned),
        ]
    return [
        Pair("httpx", _plain_httpx, _mesh_httpx),
        Pair("httpx async", _plain_httpx_async, _mesh_httpx_async),
        Pair("requests", _plain_requests, _mesh_requests),
    ]


# -- measuring ----------------------------------------------------------------------------


def ns_per_request(contender: Contender, n: int) -> float:
    gc.collect()
    gc.disable()
    try:
        started = time.process_time_ns()
        contender.run(n)
        return (time.process_time_ns() - started) / n
    finally:
        gc.enable()


def compile_bundle(folder: Path, port: int) -> Path:
    spec = {
        "apiVersion": "meshspec/v1",
        "mesh": {"name": "bench", "datacenter": "dc1", "dns": {"zone": "bench.mesh.internal"}},
        "defaults": POLICY,
        "services": {
            "checkout": {
                "port": 8080,
                "instances": [{"address": "127.0.0.1"}],
                "upstreams": {"payments": {}},
            },
            "payments": {"port": port, "instances": [{"address": "127.0.0.1", "port": port}]},
        },
    }
    source = folder / "mesh.yaml"
    source.write_text(yaml.safe_dump(spec, sort_keys=False))
    compile_spec(source, folder / "bundle")
    return folder / "bundle"


def _us(ns: float) -> str:
    return f"{ns / 1000:7.1f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=9, help="rounds per contender")
    parser.add_argument("--only", action="append", help="measure only this pair (repeatable)")
    parser.add_argument(
        "--no-network",
        action="store_true",
        help="canned answers instead of the server: the integrations' own CPU cost",
    )
    args = parser.parse_args(argv)
    chosen = [p for p in pairs(not args.no_network) if not args.only or p.name in args.only]
    loop = asyncio.new_event_loop()
    with server_process() as port, tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        mesh = Mesh.open(compile_bundle(Path(folder), port), service="checkout")
        stack.callback(loop.close)
        stack.callback(lambda: loop.run_until_complete(mesh.aclose()))
        print(
            f"CPU time per request (process_time), {args.rounds} rounds x {args.requests} "
            f"requests, contenders interleaved, "
            f"{'canned answers' if args.no_network else 'loopback server'}; "
            f"Python {platform.python_version()}, meshspec-runtime "
            f"{'compiled by mypyc' if is_compiled() else 'plain Python'}"
        )
        print(
            f"{'client':<12} {'plain us (range)':>26} {'meshspec us (range)':>26} "
            f"{'meshspec/plain (range)':>26}"
        )
        for pair in chosen:
            plain = pair.plain(port, mesh, loop)
            meshed = pair.meshspec(port, mesh, loop)
            stack.callback(plain.close)
            stack.callback(meshed.close)
            for contender in (plain, meshed):  # warm up: connections, caches, first imports
                contender.run(max(args.requests // 5, 50))
            rounds: dict[str, list[float]] = {"plain": [], "meshspec": []}
            for _ in range(args.rounds):
                rounds["plain"].append(ns_per_request(plain, args.requests))
                rounds["meshspec"].append(ns_per_request(meshed, args.requests))
            ratios = [m / p for m, p in zip(rounds["meshspec"], rounds["plain"], strict=True)]
            cells = [
                f"{_us(statistics.median(r))} ({_us(min(r)).strip()}-{_us(max(r)).strip()})"
                for r in (rounds["plain"], rounds["meshspec"])
            ]
            print(
                f"{pair.name:<12} {cells[0]:>26} {cells[1]:>26} "
                f"{statistics.median(ratios):>12.3f} ({min(ratios):.3f}-{max(ratios):.3f})"
            )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
