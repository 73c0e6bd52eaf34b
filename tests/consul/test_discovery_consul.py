"""Live discovery from a real Consul agent: health changes reach the callers' picks, an agent
outage costs no call, and the watch resumes when the agent is back."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from consul_agent import AgentStartError, ConsulAgent, RestartableAgent
from consul_inputs import JsonObject, read_definitions, register_through_api
from discovery_kit import HealthServer, Instance, get, health_servers, publish, shop_spec
from meshspec_runtime import Mesh
from meshspec_runtime.discovery import ConsulDiscovery, DiscoverySettings
from meshspec_runtime.events import DiscoveryFailed, DiscoveryRecovered, MeshEvent
from support import require_binary

CHECK_INTERVAL = 1.0
ROUND_TRIP = 1.0
"""Ample for one blocking query's answer on loopback, and the publish after it."""
THREADS = 8
# where tools/consul/build.sh puts the binary (as conftest.py says; not importable from here)
TOOLS_BIN = (
    Path(os.environ.get("MESHSPEC_TOOLS", Path.home() / ".cache" / "meshspec-tools")) / "bin"
)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"{what} did not happen within {timeout}s")
        time.sleep(0.02)
    return time.monotonic() - start


@pytest.fixture
def servers() -> Iterator[dict[str, HealthServer]]:
    with health_servers(["payments-a", "payments-b", "inventory-1"]) as running:
        yield running


def bundle_for(servers: dict[str, HealthServer], home: Path) -> Path:
    spec = shop_spec(
        [
            Instance("payments-a", servers["payments-a"].port),
            Instance("payments-b", servers["payments-b"].port),
        ],
        [Instance("inventory-1", servers["inventory-1"].port)],
    )
    publish(spec, home)
    return home


def definitions_of(home: Path, services: tuple[str, ...]) -> list[JsonObject]:
    """The bundle's Consul service definitions of ``services`` (files group several)."""
    return [
        definition
        for path in sorted((home / "current" / "consul" / "services").glob("*.json"))
        for definition in read_definitions(path)
        if definition["Name"] in services
    ]


def register_bundle(agent: ConsulAgent, home: Path) -> None:
    for definition in definitions_of(home, ("payments", "inventory")):
        register_through_api(agent.client, definition)


def passing(agent: ConsulAgent, service: str) -> set[str]:
    _, entries = agent.client.health.service(service, passing=True)
    return {entry["Service"]["ID"] for entry in entries}


def ids(mesh: Mesh, upstream: str) -> set[str]:
    return {endpoint.id for endpoint in mesh.upstream(upstream).endpoints}


def test_critical_instance_leaves_the_picks_within_an_interval_and_a_round_trip(
    consul_agent: ConsulAgent, servers: dict[str, HealthServer], tmp_path: Path
) -> None:
    home = bundle_for(servers, tmp_path / "home")
    register_bundle(consul_agent, home)
    wait_until(
        lambda: passing(consul_agent, "payments") == {"payments-a", "payments-b"},
        15,
        "both passing",
    )
    discovery = ConsulDiscovery(f"http://{consul_agent.http_addr}")
    with Mesh.open(home, service="checkout", discovery=discovery) as mesh:
        payments = mesh.upstream("payments")
        # the bundle's list and Consul's agree on ids: wait for an answer that differs
        assert mesh.discovery is not None
        wait_until(lambda: mesh.discovery.answers("payments") > 0, 5, "a first answer")
        servers["payments-b"].healthy.clear()
        started = time.monotonic()
        took = wait_until(lambda: ids(mesh, "payments") == {"payments-a"}, 10, "payments-b leaving")
        picks = Counter(payments.call(get) for _ in range(50))
        assert picks == {"payments-a": 50}
        assert took <= CHECK_INTERVAL + ROUND_TRIP, f"took {took:.2f}s"
        print(f"payments-b left the picks {took:.2f}s after its check began failing")
        # and back: passing again, picked again
        servers["payments-b"].healthy.set()
        wait_until(
            lambda: ids(mesh, "payments") == {"payments-a", "payments-b"},
            10,
            "payments-b returning",
        )
        assert set(Counter(payments.call(get) for _ in range(10))) == {"payments-a", "payments-b"}
        assert time.monotonic() - started < 30


@pytest.fixture
def own_agent(tmp_path: Path) -> Iterator[RestartableAgent]:
    binary = require_binary("consul", extra_dirs=[TOOLS_BIN])
    config_dir = tmp_path / "agent-config"
    config_dir.mkdir()
    restartable = RestartableAgent(binary, tmp_path / "agent", ["-config-dir", str(config_dir)])
    (tmp_path / "agent").mkdir()
    try:
        yield restartable
    finally:
        restartable.stop()


def test_agent_outage_fails_no_call_and_the_watch_resumes(
    own_agent: RestartableAgent, servers: dict[str, HealthServer], tmp_path: Path
) -> None:
    home = bundle_for(servers, tmp_path / "home")
    # the agent loads the bundle's definitions from its config dir, at every start
    config_dir = tmp_path / "agent-config"
    wanted = definitions_of(home, ("payments", "inventory"))
    (config_dir / "services.json").write_text(json.dumps({"services": wanted}))
    try:
        agent = own_agent.start()
    except AgentStartError as error:
        pytest.fail(str(error))
    wait_until(
        lambda: passing(agent, "payments") == {"payments-a", "payments-b"}, 15, "both passing"
    )
    settings = DiscoverySettings(
        wait=5.0, retry_delay=0.2, failure_threshold=2, backoff_base=0.2, backoff_cap=1.0
    )
    events: list[MeshEvent] = []
    failures: list[BaseException] = []
    calls = Counter[str]()
    stop = threading.Event()
    lock = threading.Lock()
    with Mesh.open(
        home,
        service="checkout",
        discovery=ConsulDiscovery(f"http://{agent.http_addr}", settings=settings),
    ) as mesh:
        mesh.on(DiscoveryFailed, events.append)
        mesh.on(DiscoveryRecovered, events.append)

        def traffic() -> None:
            while not stop.is_set():
                try:
                    answered = mesh.call("payments", get)
                except BaseException as error:
                    with lock:
                        failures.append(error)
                else:
                    with lock:
                        calls[answered] += 1

        threads = [threading.Thread(target=traffic) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(0.5)
            own_agent.stop()
            wait_until(
                lambda: any(isinstance(e, DiscoveryFailed) for e in events), 10, "a failed read"
            )
            time.sleep(2.0)  # traffic goes on against the last known good set
            assert ids(mesh, "payments") == {"payments-a", "payments-b"}
            assert (
                mesh.discovery is not None
                and mesh.discovery.staleness("payments", mesh.clock()) > 1.0
            )
            during = sum(calls.values())
            # payments-b fails its check while the agent is down: only a resumed watch sees it
            servers["payments-b"].healthy.clear()
            own_agent.start()
            wait_until(lambda: ids(mesh, "payments") == {"payments-a"}, 30, "the watch resuming")
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert failures == []
    assert sum(calls.values()) > during > 0
    assert any(isinstance(e, DiscoveryRecovered) for e in events)
