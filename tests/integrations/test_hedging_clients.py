"""Hedged requests through the client integrations (httpx sync and async, requests, aiohttp)
against real loopback servers: one instance answers slowly, the other at once; every call is
answered by the fast one within the hedge delay plus its answer, though half of them begin
slow."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import requests.adapters
from hedging_kit import CALLS, FAST_ENOUGH, POLICY, SLOW
from http_servers import serving
from mesh_kit import compile_mesh
from meshspec_runtime import Mesh
from prometheus_client import CollectorRegistry


def open_mesh(tmp_path: Path, ports: list[int]) -> Mesh:
    return Mesh.open(compile_mesh(tmp_path, {"payments": ports}, policy=POLICY), service="checkout")


def test_httpx_sync_calls_are_answered_by_the_hedge(tmp_path: Path) -> None:
    with (
        serving("slow", "ok", delay=SLOW) as (slow, fast),
        open_mesh(tmp_path, [slow.port, fast.port]) as mesh,
    ):
        client = mesh.httpx_client("payments")
        durations = []
        for _ in range(CALLS):
            began = time.monotonic()
            assert client.get("/").text == "ok"
            durations.append(time.monotonic() - began)
        client.close()
    assert max(durations) < FAST_ENOUGH
    assert slow.count >= 1  # round robin sent first tries to it too
    assert fast.count == CALLS  # every call was answered there (hedge or first try)


async def httpx_async_texts(mesh: Mesh) -> AsyncIterator[str]:
    async with mesh.async_httpx_client("payments") as client:
        for _ in range(CALLS):
            yield (await client.get("/")).text


async def aiohttp_texts(mesh: Mesh) -> AsyncIterator[str]:
    async with mesh.aiohttp_session("payments") as session:
        for _ in range(CALLS):
            async with session.get("/") as response:
                assert response.status == 200
                yield await response.text()


@pytest.mark.parametrize("texts", [httpx_async_texts, aiohttp_texts])
def test_async_calls_are_answered_by_the_hedge(
    tmp_path: Path, texts: Callable[[Mesh], AsyncIterator[str]]
) -> None:
    async def calls(mesh: Mesh) -> list[float]:
        durations = []
        began = time.monotonic()
        async for text in texts(mesh):
            assert text == "ok"
            durations.append(time.monotonic() - began)
            began = time.monotonic()
        await mesh.aclose()
        return durations

    with serving("slow", "ok", delay=SLOW) as (slow, fast):
        durations = asyncio.run(calls(open_mesh(tmp_path, [slow.port, fast.port])))
    assert len(durations) == CALLS and max(durations) < FAST_ENOUGH
    assert slow.count >= 1 and fast.count == CALLS


def test_requests_calls_are_answered_by_the_hedge(tmp_path: Path) -> None:
    with (
        serving("slow", "ok", delay=SLOW) as (slow, fast),
        open_mesh(tmp_path, [slow.port, fast.port]) as mesh,
    ):
        session = mesh.requests_session("payments")
        durations = []
        for _ in range(CALLS):
            began = time.monotonic()
            assert session.get("http://payments/").text == "ok"
            durations.append(time.monotonic() - began)
    assert max(durations) < FAST_ENOUGH
    assert slow.count >= 1 and fast.count == CALLS


def test_hedges_are_exported_per_edge(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    with serving("slow", "ok", delay=SLOW) as (slow, fast):
        bundle = compile_mesh(tmp_path, {"payments": [slow.port, fast.port]}, policy=POLICY)
        with Mesh.open(bundle, service="checkout", metrics=registry) as mesh:
            client = mesh.httpx_client("payments")
            for _ in range(CALLS):
                client.get("/")
            client.close()
            edge = {"caller": "checkout", "upstream": "payments"}

            def hedges(event: str) -> float | None:
                return registry.get_sample_value(
                    "meshspec_upstream_hedges_total", {**edge, "event": event}
                )

            started = slow.count  # every call whose first try went to the slow one hedged
            assert hedges("started") == started
            assert hedges("won") == started
            assert hedges("cancelled") == started
            assert hedges("refused") == 0
            assert registry.get_sample_value("meshspec_upstream_retries_total", edge) == 0
            assert registry.get_sample_value(
                "meshspec_upstream_requests_total", {**edge, "outcome": "success"}
            ) == float(CALLS)


class _OverlapCheck(httpx.BaseTransport):
    """A real transport that holds the first attempt until the hedge has been handed over, then
    reports whether the first attempt's request still names the port it came with."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport(retries=0)
        self.hedge_sent = threading.Event()
        self.ports: list[tuple[int | None, int | None]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        port = request.url.port
        if not self.ports and not self.hedge_sent.is_set():
            self.ports.append((port, None))
            self.hedge_sent.wait(5.0)  # the hedge goes out while this attempt is in flight
            self.ports[0] = (port, request.url.port)
        else:
            self.hedge_sent.set()
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_overlapping_httpx_attempts_each_keep_their_own_endpoint(tmp_path: Path) -> None:
    check = _OverlapCheck()
    with (
        serving("ok", "ok") as (one, two),
        open_mesh(tmp_path, [one.port, two.port]) as mesh,
    ):
        client = mesh.httpx_client("payments", transport=check)
        assert client.get("/").text == "ok"
        client.close()
    assert check.hedge_sent.is_set()
    [(before, after)] = check.ports
    assert before in (one.port, two.port)
    assert after == before  # the hedge's endpoint did not leak into the first attempt


def test_overlapping_requests_attempts_each_keep_their_own_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_send = requests.adapters.HTTPAdapter.send
    hedge_sent = threading.Event()
    ports: list[tuple[int | None, int | None]] = []

    def held_send(
        adapter: requests.adapters.HTTPAdapter, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        port = urllib.parse.urlsplit(request.url or "").port
        if not ports and not hedge_sent.is_set():
            ports.append((port, None))
            hedge_sent.wait(5.0)  # the hedge goes out while this attempt is in flight
            ports[0] = (port, urllib.parse.urlsplit(request.url or "").port)
        else:
            hedge_sent.set()
        return real_send(adapter, request, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", held_send)
    with (
        serving("ok", "ok") as (one, two),
        open_mesh(tmp_path, [one.port, two.port]) as mesh,
    ):
        assert mesh.requests_session("payments").get("http://payments/").text == "ok"
    assert hedge_sent.is_set()
    [(before, after)] = ports
    assert before in (one.port, two.port)
    assert after == before  # the hedge's endpoint did not leak into the first attempt
