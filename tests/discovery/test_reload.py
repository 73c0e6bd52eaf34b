"""Hot reload: 8 threads of traffic while 50 bundles are published; unchanged edges keep
their state, changed ones start afresh; a bad bundle is refused and the old one stays."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from discovery_kit import HealthServer, Instance, get, health_servers, publish
from meshspec_runtime import Mesh
from meshspec_runtime.events import ReloadApplied, ReloadRefused
from meshspec_runtime.layout import CURRENT
from meshspec_runtime.policy.breaker import BreakerState

THREADS = 8
PUBLISHES = 50
UPSTREAMS = ("payments", "inventory", "ledger", "search")


def breaker(failures: int = 5) -> dict[str, Any]:
    return {"mode": "consecutive", "consecutive_failures": failures, "open_for": "1h"}


def spec(ports: dict[str, int], generation: int, *, with_checkout: bool = True) -> dict[str, Any]:
    """payments and ledger never change; inventory's timeout and search's breaker change with
    ``generation``."""
    upstreams = {
        "payments": {"circuit_breaker": breaker()},
        "ledger": {"circuit_breaker": breaker()},
        "inventory": {"timeout": f"{2000 + generation}ms", "circuit_breaker": breaker()},
        "search": {"circuit_breaker": breaker(5 + generation)},
    }
    services: dict[str, Any] = {
        name: {"port": 9000, "instances": [Instance(f"{name}-1", port).spec()]}
        for name, port in ports.items()
    }
    if with_checkout:
        services["checkout"] = {
            "port": 8081,
            "instances": [{"address": "127.0.0.1"}],
            "upstreams": upstreams,
        }
    return {
        "apiVersion": "meshspec/v1",
        "mesh": {"name": "shop", "dns": {"zone": "shop.test", "ttl": "30s"}},
        "defaults": {
            "timeout": "2s",
            "retry": {"attempts": 2, "per_try_timeout": "1s"},
            "load_balancer": {"strategy": "round_robin"},
        },
        "services": services,
    }


@pytest.fixture
def servers() -> Iterator[dict[str, HealthServer]]:
    with health_servers(list(UPSTREAMS)) as running:
        yield running


def ports(servers: dict[str, HealthServer]) -> dict[str, int]:
    return {name: server.port for name, server in servers.items()}


def force_open(mesh: Mesh, upstream: str) -> None:
    policies = mesh.upstream(upstream).policies
    assert policies.breaker is not None
    now = mesh.clock()
    for _ in range(policies.breaker.config.consecutive_failures or 5):
        policies.breaker.on_failure(now, 0.01)
    assert policies.breaker.current_state is BreakerState.OPEN


def test_fifty_publishes_under_traffic(servers: dict[str, HealthServer], tmp_path: Path) -> None:
    home = tmp_path / "home"
    publish(spec(ports(servers), 0), home, tmp_path)
    applied: list[ReloadApplied] = []
    failures: list[BaseException] = []
    calls: Counter[str] = Counter()
    lock = threading.Lock()
    stop = threading.Event()
    with Mesh.open(home, service="checkout", watch=0.01) as mesh:
        mesh.on(ReloadApplied, applied.append)
        before = {name: mesh.upstream(name).policies for name in UPSTREAMS}
        force_open(mesh, "ledger")  # unchanged: must stay open
        force_open(mesh, "search")  # changed: must come back closed

        def traffic(upstream: str) -> None:
            while not stop.is_set():
                try:
                    answered = mesh.call(upstream, get)
                except BaseException as error:
                    with lock:
                        failures.append(error)
                else:
                    with lock:
                        calls[answered] += 1

        threads = [
            threading.Thread(target=traffic, args=(("payments", "inventory")[i % 2],))
            for i in range(THREADS)
        ]
        for thread in threads:
            thread.start()
        versions = []
        try:
            for generation in range(1, PUBLISHES + 1):
                version = publish(spec(ports(servers), generation), home, tmp_path)
                versions.append(version)
                deadline = mesh.clock() + 10
                while mesh.version != version:  # the watch applies it
                    assert mesh.clock() < deadline, f"publish {generation} never applied"
                    stop.wait(0.005)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        after = {name: mesh.upstream(name).policies for name in UPSTREAMS}

    assert failures == []
    assert calls["payments-1"] > 0 and calls["inventory-1"] > 0
    assert len(set(versions)) == PUBLISHES
    assert [event.new_version for event in applied] == versions
    for event in applied:
        assert set(event.kept) == {"payments", "ledger"}
        assert set(event.renewed) == {"inventory", "search"}
    # unchanged edges: the very same state objects, the opened breaker still open
    assert after["payments"] is before["payments"]
    assert after["ledger"] is before["ledger"]
    assert after["ledger"].breaker is not None
    assert after["ledger"].breaker.current_state is BreakerState.OPEN
    # changed edges: fresh state, built from the last bundle
    assert after["inventory"] is not before["inventory"]
    assert after["inventory"].timeout == pytest.approx(2.0 + PUBLISHES / 1000)
    assert after["search"] is not before["search"]
    assert after["search"].breaker is not None
    assert after["search"].breaker.current_state is BreakerState.CLOSED


def test_bad_bundles_are_refused_and_the_old_one_stays(
    servers: dict[str, HealthServer], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    first = publish(spec(ports(servers), 0), home, tmp_path)
    refused: list[ReloadRefused] = []
    with Mesh.open(home, service="checkout") as mesh:
        mesh.on(ReloadRefused, refused.append)
        kept = mesh.upstream("inventory").policies
        # a bundle without this service
        publish(spec(ports(servers), 1, with_checkout=False), home, tmp_path)
        result = mesh.reload()
        assert (result.applied, result.version) == (False, first)
        assert result.refused is not None and "no service 'checkout'" in result.refused
        # a bundle altered after compilation
        second = publish(spec(ports(servers), 2), home, tmp_path)
        slice_path = next(  # the bucket holding checkout's view
            path
            for path in (home / CURRENT / "services").glob("*.json")
            if b'"checkout"' in path.read_bytes()
        )
        slice_path.write_bytes(slice_path.read_bytes().replace(b'"reset"', b'"RESET"', 1))
        result = mesh.reload()
        assert result.refused is not None and "sha256" in result.refused
        assert mesh.version == first
        assert mesh.upstream("inventory").policies is kept
        assert mesh.call("inventory", get) == "inventory-1"
        assert [event.version for event in refused] == [first, first]
        assert mesh.reloads == {"applied": 0, "refused": 2}
        # a good bundle after the bad ones is applied
        third = publish(spec(ports(servers), 3), home, tmp_path)
        assert third != second
        assert mesh.reload().applied
        assert mesh.version == third
        assert mesh.reload().applied is False  # nothing new: a no-op


def test_reload_keeps_metrics_and_reports_the_new_version(
    servers: dict[str, HealthServer], tmp_path: Path
) -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    registry = prometheus_client.CollectorRegistry()
    home = tmp_path / "home"
    publish(spec(ports(servers), 0), home, tmp_path)
    with Mesh.open(home, service="checkout", metrics=registry) as mesh:
        mesh.call("inventory", get)
        second = publish(spec(ports(servers), 1), home, tmp_path)
        assert mesh.reload().applied
        for _ in range(3):
            mesh.call("inventory", get)
            mesh.call("payments", get)
        value = registry.get_sample_value
        assert (
            value("meshspec_bundle_info", {"caller": "checkout", "mesh": "shop", "version": second})
            == 1
        )
        assert (
            value("meshspec_bundle_reloads_total", {"caller": "checkout", "result": "applied"}) == 1
        )
        edge = {"caller": "checkout", "outcome": "success"}
        # the renewed edge counts from its fresh policies; the kept one carries on
        assert value("meshspec_upstream_requests_total", {**edge, "upstream": "inventory"}) == 3
        assert value("meshspec_upstream_requests_total", {**edge, "upstream": "payments"}) == 3
