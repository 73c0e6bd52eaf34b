"""register=True against a real agent: the bundle's own definition, a heartbeat TTL check
kept passing, re-registration after the agent loses it, deregistration on close."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from consul_agent import ConsulAgent
from discovery_kit import Instance, publish, shop_spec
from meshspec_runtime import Mesh
from meshspec_runtime.discovery import ConsulDiscovery
from meshspec_runtime.discovery.register import HEARTBEAT_PREFIX, RegisterAs, RegistrationError
from meshspec_runtime.events import InstanceRegistered, MeshEvent, RegistrationFailed

CHECKOUTS = (Instance("checkout-1", 8081), Instance("checkout-2", 8082))


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout}s")
        time.sleep(0.05)


def bundle(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    publish(shop_spec([Instance("payments-a", 9001)], checkout_instances=CHECKOUTS), home, tmp_path)
    return home


def heartbeat_status(agent: ConsulAgent, instance: str) -> str | None:
    check = agent.client.agent.checks().get(HEARTBEAT_PREFIX + instance)
    return None if check is None else str(check["Status"])


def test_registers_keeps_passing_and_deregisters(consul_agent: ConsulAgent, tmp_path: Path) -> None:
    home = bundle(tmp_path)
    healthy = threading.Event()
    healthy.set()
    events: list[MeshEvent] = []
    want = RegisterAs(instance_id="checkout-2", ttl=3.0, healthy=healthy.is_set)
    discovery = ConsulDiscovery(f"http://{consul_agent.http_addr}")
    mesh = Mesh.open(home, service="checkout", discovery=discovery, register=want)
    try:
        mesh.on(InstanceRegistered, events.append)
        wait_until(lambda: heartbeat_status(consul_agent, "checkout-2") == "passing", 10, "passing")
        service = consul_agent.client.agent.services()["checkout-2"]
        # the bundle's definition, field by field (the API's spelling)
        assert (service["Service"], service["Address"], service["Port"]) == (
            "checkout",
            "127.0.0.1",
            8082,
        )
        assert service["Meta"]["meshspec_mesh"] == "shop"
        assert "checkout-1" not in consul_agent.client.agent.services()
        # the bundle's own TTL check is registered next to the heartbeat
        checks = {
            c["CheckID"]: c
            for c in consul_agent.client.agent.checks().values()
            if c["ServiceID"] == "checkout-2"
        }
        assert len(checks) == 2
        # unhealthy process: the heartbeat turns critical
        healthy.clear()
        wait_until(
            lambda: heartbeat_status(consul_agent, "checkout-2") == "critical", 5, "critical"
        )
        healthy.set()
        wait_until(
            lambda: heartbeat_status(consul_agent, "checkout-2") == "passing", 5, "passing again"
        )
        # the agent loses the registration (an operator, a restart): it is made again
        consul_agent.client.agent.service.deregister("checkout-2")
        wait_until(
            lambda: "checkout-2" in consul_agent.client.agent.services(), 10, "re-registration"
        )
        wait_until(
            lambda: heartbeat_status(consul_agent, "checkout-2") == "passing", 10, "passing after"
        )
        assert len(events) >= 1
    finally:
        mesh.close()
    assert "checkout-2" not in consul_agent.client.agent.services()
    assert heartbeat_status(consul_agent, "checkout-2") is None


def test_partial_failure_is_retried(tmp_path: Path) -> None:
    """No agent listening yet: every attempt fails, is reported, and is retried."""
    from support import free_port

    home = bundle(tmp_path)
    failed: list[RegistrationFailed] = []
    port = free_port()
    want = RegisterAs(instance_id="checkout-1", consul=f"http://127.0.0.1:{port}")
    with Mesh.open(home, service="checkout", register=want) as mesh:
        mesh.on(RegistrationFailed, failed.append)
        wait_until(lambda: len(failed) >= 2, 10, "two failed attempts")
        assert mesh.registrar is not None and not mesh.registrar.registered.is_set()
    assert all(event.instance_id == "checkout-1" for event in failed)


def test_ambiguous_instance_is_refused_with_the_choices(tmp_path: Path) -> None:
    home = bundle(tmp_path)
    with pytest.raises(
        RegistrationError, match=r"2 instances match.*checkout-1 \(127.0.0.1:8081\)"
    ):
        Mesh.open(home, service="checkout", register=True)
    with pytest.raises(RegistrationError, match="no instance matches"):
        Mesh.open(home, service="checkout", register=RegisterAs(port=1234))
