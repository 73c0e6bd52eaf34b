"""Helpers for the discovery, registration and reload tests: small specs compiled and
published into a bundle home in-process, and loopback HTTP instances whose health can be
switched."""

from __future__ import annotations

import http.server
import threading
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from meshspec_runtime.bundle import Endpoint

from meshspec.compile import compile_spec

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Instance:
    id: str
    port: int
    address: str = LOOPBACK
    weight: int = 1

    def spec(self) -> dict[str, Any]:
        return {"id": self.id, "address": self.address, "port": self.port, "weight": self.weight}


def shop_spec(
    payments: Sequence[Instance],
    inventory: Sequence[Instance] = (Instance("inventory-1", 7001),),
    *,
    payments_breaker_failures: int = 5,
    inventory_timeout: str = "2s",
    health_interval: str = "1s",
    dns_ttl: str = "30s",
    checkout_instances: Sequence[Instance] = (Instance("checkout-1", 8081),),
) -> dict[str, Any]:
    """A small mesh: checkout calls payments and inventory. Both callees have HTTP checks on
    /healthz; payments has a consecutive-failures breaker."""
    check = {"http": "/healthz", "interval": health_interval, "timeout": "500ms"}
    return {
        "apiVersion": "meshspec/v1",
        "mesh": {"name": "shop", "datacenter": "dc1", "dns": {"zone": "shop.test", "ttl": dns_ttl}},
        "defaults": {"timeout": "2s", "retry": {"attempts": 2, "per_try_timeout": "1s"}},
        "services": {
            "checkout": {
                "port": 8081,
                "instances": [i.spec() for i in checkout_instances],
                "health_check": {"ttl": "30s"},
                "upstreams": {
                    "payments": {
                        "circuit_breaker": {
                            "mode": "consecutive",
                            "consecutive_failures": payments_breaker_failures,
                            "open_for": "30s",
                        },
                        "load_balancer": {"strategy": "round_robin"},
                    },
                    "inventory": {
                        "timeout": inventory_timeout,
                        "circuit_breaker": {
                            "mode": "consecutive",
                            "consecutive_failures": 5,
                            "open_for": "30s",
                        },
                        "load_balancer": {"strategy": "round_robin"},
                    },
                },
            },
            "payments": {
                "port": 9090,
                "health_check": check,
                "instances": [i.spec() for i in payments],
            },
            "inventory": {
                "port": 7000,
                "health_check": check,
                "instances": [i.spec() for i in inventory],
            },
        },
    }


def publish(spec: dict[str, Any], home: Path, workdir: Path | None = None) -> str:
    """Compile ``spec`` and publish it into the bundle home ``home``; its version."""
    folder = workdir or home.parent
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return compile_spec(path, home).version


class _Health(http.server.BaseHTTPRequestHandler):
    server: HealthServer

    def do_GET(self) -> None:
        # /healthz follows the switch; every other path is the service's work and answers
        healthy = self.path != "/healthz" or self.server.healthy.is_set()
        self.send_response(200 if healthy else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


class HealthServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__((LOOPBACK, 0), _Health)
        self.healthy = threading.Event()
        self.healthy.set()

    @property
    def port(self) -> int:
        port: int = self.server_address[1]
        return port


@contextmanager
def health_servers(ids: Sequence[str]) -> Iterator[dict[str, HealthServer]]:
    """One loopback HTTP server per instance id; ``/healthz`` answers 200 or 503."""
    servers = {instance: HealthServer() for instance in ids}
    threads = [
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        for server in servers.values()
    ]
    for thread in threads:
        thread.start()
    try:
        yield servers
    finally:
        for server in servers.values():
            server.shutdown()
            server.server_close()


def get(endpoint: Endpoint, timeout: float) -> str:
    """One attempt: GET /work on ``endpoint``; the instance id that answered."""
    url = f"http://{endpoint.address}:{endpoint.port}/work"
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        answer.read()
    return endpoint.id
