"""Helpers of the compile tests: resolved meshes built directly, a real NSD serving a zone."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.exception
import dns.resolver
import pytest
from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.layout import bucket_of, index_path
from meshspec_runtime.policy.config import (
    CircuitBreakerConfig,
    LoadBalancerConfig,
    OutlierDetectionConfig,
    RetryBudgetConfig,
    RetryConfig,
    Strategy,
    UpstreamPolicy,
)
from support import NSD_CONF, free_port, require_binary

from meshspec.compile.ir import Edge, HealthCheck, ResolvedMesh, Service


def ir_mesh(retry_attempts: int = 3) -> ResolvedMesh:
    """A small mesh with every kind of record and policy the emitters handle."""
    payments_policy = UpstreamPolicy(
        timeout=1.0,
        retry=RetryConfig(
            attempts=retry_attempts, per_try_timeout=0.4, budget=RetryBudgetConfig(ratio=0.2)
        ),
        circuit_breaker=CircuitBreakerConfig(),
        load_balancer=LoadBalancerConfig(strategy=Strategy.LEAST_REQUEST, choices=2),
        outlier_detection=OutlierDetectionConfig(consecutive_failures=5, max_ejected=0.5),
        concurrency_limit=64,
    )
    inventory_policy = UpstreamPolicy(load_balancer=LoadBalancerConfig(strategy=Strategy.PEAK_EWMA))
    return ResolvedMesh(
        name="shop",
        datacenter="dc1",
        zone="shop.mesh.internal",
        dns_ttl=30,
        services=(
            Service(
                name="checkout",
                port=8080,
                protocol="http",
                tags=("web",),
                meta=(("team", "storefront"),),
                endpoints=(
                    Endpoint(id="checkout-0", address="10.0.1.10", port=8080),
                    Endpoint(id="checkout-1", address="10.0.1.11", port=8080),
                ),
                health_check=HealthCheck("http", "/healthz", 10.0, 2.0, 60.0, 1, 3),
                edges=(
                    Edge("inventory", inventory_policy, 0.99),
                    Edge("payments", payments_policy, 0.999),
                ),
            ),
            Service(
                name="inventory",
                port=7000,
                protocol="tcp",
                tags=(),
                meta=(),
                endpoints=(
                    Endpoint(id="inventory-0", address="fd00::7", port=7000),
                    Endpoint(id="inventory-1", address="10.0.3.10", port=7001, weight=3),
                ),
                health_check=HealthCheck("tcp", None, 5.0, 1.0, None),
                edges=(),
            ),
            Service(
                name="payments",
                port=9090,
                protocol="grpc",
                tags=("pci", 'quote"tag'),
                meta=(),
                endpoints=(
                    Endpoint(id="payments-0", address="10.0.2.10", port=9090, weight=2),
                    Endpoint(id="payments-1", address="10.0.2.11", port=9090),
                ),
                health_check=HealthCheck("grpc", "payments.v1.Health", 5.0, 1.0, 120.0),
                edges=(),
            ),
        ),
    )


TOOLS_DIRS = [Path.home() / ".cache" / "meshspec-tools" / "bin"]  # promtool, consul
SBIN_DIRS = [Path("/usr/sbin")]


def _wait_until_served(
    server: subprocess.Popen[bytes], resolver: dns.resolver.Resolver, zone: str
) -> tuple[bool, str]:
    """(True, "") once NSD answers for ``zone``; (False, its output) when it exited or did
    not answer within 15 s."""
    deadline = time.monotonic() + 15
    while True:
        try:
            resolver.resolve(zone, "SOA")
            return True, ""
        except dns.exception.DNSException:
            if server.poll() is not None or time.monotonic() > deadline:
                if server.poll() is None:
                    return False, ""
                return False, server.stdout.read().decode() if server.stdout else ""
            time.sleep(0.05)


@contextlib.contextmanager
def serving_zone(root: Path, zone: str, zonefile: Path) -> Iterator[dns.resolver.Resolver]:
    """A real NSD serving ``zonefile`` on a free 127.0.0.1 port, and a resolver that asks it.

    NSD runs in the foreground (``-d``) as the test's child and is stopped by its PID.
    """
    nsd = require_binary("nsd", extra_dirs=SBIN_DIRS)
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(zonefile, root / zonefile.name)
    for _ in range(5):  # a port free a moment ago can be taken before NSD binds it: pick again
        port = free_port(socket.SOCK_DGRAM)
        conf = root / "nsd.conf"
        conf.write_text(NSD_CONF.format(port=port, root=root, zone=zone, zonefile=zonefile.name))
        server = subprocess.Popen(
            [str(nsd), "-d", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = port
        resolver.lifetime = 1.0
        served, output = _wait_until_served(server, resolver, zone)
        log = (root / "nsd.log").read_text() if (root / "nsd.log").exists() else ""
        if served or "Address already in use" not in output + log:
            break
        if server.stdout:
            server.stdout.close()
    try:
        if not served:
            pytest.fail(f"NSD did not serve {zone}: {output}{log}")
        yield resolver
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout:
            server.stdout.close()


def listing(bundle: Path) -> dict[str, dict[str, Any]]:
    """Every file the indexes of the version folder ``bundle`` list -> its sha256 and size."""
    manifest = json.loads((bundle / "manifest.json").read_bytes())
    listed: dict[str, dict[str, Any]] = {}
    for index in manifest["files"]:
        listed.update(json.loads((bundle / index).read_bytes())["files"])
    return listed


def relist(
    bundle: Path, path: str, raw: bytes | None = None, entry: dict[str, Any] | None = None
) -> None:
    """Write ``raw`` at ``path`` (when given) and record it in the index that lists ``path``
    (``entry``, or the content's sha256 and size), and that index's new digest in the manifest:
    a bundle whose digests agree, whatever its files say."""
    if raw is not None:
        (bundle / path).write_bytes(raw)
    if entry is None:
        content = (bundle / path).read_bytes()
        entry = {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}
    manifest = json.loads((bundle / "manifest.json").read_bytes())
    index = index_path(bucket_of(path, manifest["indexes"]))
    data = json.loads((bundle / index).read_bytes())
    data["files"][path] = entry
    index_raw = json.dumps(data).encode()
    (bundle / index).write_bytes(index_raw)
    manifest["files"][index] = {
        "sha256": hashlib.sha256(index_raw).hexdigest(),
        "size": len(index_raw),
    }
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def wide_mesh(services: int) -> ResolvedMesh:
    """A mesh of ``services`` services shaped like the small one's, each calling the next:
    enough of them to fill many buckets and indexes."""
    template = ir_mesh().service("checkout")
    edge = template.edges[1]
    names = [f"svc-{index:04d}" for index in range(services)]
    return dataclasses.replace(
        ir_mesh(),
        services=tuple(
            dataclasses.replace(
                template,
                name=name,
                endpoints=tuple(
                    endpoint.model_copy(update={"id": f"{name}-{n}"})
                    for n, endpoint in enumerate(template.endpoints)
                ),
                edges=(dataclasses.replace(edge, upstream=names[index + 1]),)
                if index + 1 < services
                else (),
            )
            for index, name in enumerate(names)
        ),
    )
