"""DNS discovery against a real NSD serving the compiled zone: a recompiled zone with a
changed instance, reloaded by NSD, reaches the runtime within the record's TTL."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.resolver
import pytest
from discovery_kit import Instance, publish, shop_spec
from meshspec_runtime import Mesh
from meshspec_runtime.discovery import DiscoverySettings, DnsDiscovery
from support import NSD_CONF, free_port, require_binary

ZONE = "shop.test"
TTL = 2.0
READ_MARGIN = 0.5
"""One SRV and one address lookup on loopback, and the publish after them."""


class Nsd:
    """A real NSD on a free 127.0.0.1 port, the test's child, stopped by its PID."""

    def __init__(self, binary: Path, root: Path) -> None:
        self.binary = binary
        self.root = root
        self.process: subprocess.Popen[bytes] | None = None
        self.resolver = dns.resolver.Resolver(configure=False)
        self.resolver.nameservers = ["127.0.0.1"]
        self.resolver.port = free_port(socket.SOCK_DGRAM)
        self.resolver.lifetime = 1.0

    @property
    def port(self) -> int:
        port: int = self.resolver.port
        return port

    def serial(self) -> int | None:
        try:
            answer = self.resolver.resolve(ZONE, "SOA")
        except dns.exception.DNSException:
            return None
        return int(answer[0].serial)  # type: ignore[attr-defined]

    def serve(self, zonefile: Path) -> None:
        """Serve ``zonefile``: start NSD on it, or replace the zone and have NSD reload it
        (SIGHUP re-reads zone files that changed)."""
        shutil.copyfile(zonefile, self.root / "zone.new")
        os.replace(self.root / "zone.new", self.root / "zone")
        if self.process is not None:
            self.process.send_signal(signal.SIGHUP)
            return
        conf = self.root / "nsd.conf"
        for _ in range(5):  # a port free a moment ago may be taken before NSD binds it
            conf.write_text(
                NSD_CONF.format(port=self.port, root=self.root, zone=ZONE, zonefile="zone")
            )
            self.process = subprocess.Popen(
                [str(self.binary), "-d", "-c", str(conf)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 15
            while self.process.poll() is None and self.serial() is None:
                if time.monotonic() > deadline:
                    return  # still starting: the test's own wait reports it
                time.sleep(0.05)
            if self.process.poll() is None:
                return  # serving
            self.resolver.port = free_port(socket.SOCK_DGRAM)  # it exited: bind failed

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def nsd(tmp_path: Path) -> Iterator[Nsd]:
    binary = require_binary("nsd", extra_dirs=[Path("/usr/sbin")])
    root = tmp_path / "nsd"
    root.mkdir()
    server = Nsd(binary, root)
    try:
        yield server
    finally:
        server.stop()


def wait_for(condition: object, timeout: float, what: str) -> float:
    assert callable(condition)
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"{what} did not happen within {timeout}s")
        time.sleep(0.01)
    return time.monotonic() - start


def test_changed_instance_reaches_the_runtime_within_the_ttl(nsd: Nsd, tmp_path: Path) -> None:
    home = tmp_path / "home"
    ttl = f"{TTL:g}s"
    before = [Instance("payments-a", 9001), Instance("payments-b", 9002, weight=2)]
    publish(shop_spec(before, dns_ttl=ttl), home, tmp_path)
    zonefile = home / "current" / "dns" / f"{ZONE}.zone"
    nsd.serve(zonefile)
    wait_for(lambda: nsd.serial() is not None, 15, "NSD serving the zone")
    discovery = DnsDiscovery(
        ZONE, nameservers=["127.0.0.1"], port=nsd.port, settings=DiscoverySettings()
    )
    with Mesh.open(home, service="checkout", discovery=discovery) as mesh:
        assert mesh.discovery is not None
        wait_for(lambda: mesh.discovery.answers("payments") > 0, 5, "a first answer")
        payments = mesh.upstream("payments")
        assert {(e.id, e.port, e.weight) for e in payments.endpoints} == {
            ("payments-a", 9001, 1),
            ("payments-b", 9002, 2),
        }
        first_serial = nsd.serial()
        after = [Instance("payments-a", 9001), Instance("payments-c", 9003)]
        publish(shop_spec(after, dns_ttl=ttl), home, tmp_path)
        nsd.serve(zonefile)
        wait_for(lambda: nsd.serial() != first_serial, 15, "NSD reloading the zone")
        took = wait_for(
            lambda: {e.id for e in payments.endpoints} == {"payments-a", "payments-c"},
            TTL + 5,
            "the new instance reaching the runtime",
        )
        assert took <= TTL + READ_MARGIN, f"took {took:.2f}s, TTL {TTL}s"
        assert {(e.id, e.address, e.port) for e in payments.endpoints} == {
            ("payments-a", "127.0.0.1", 9001),
            ("payments-c", "127.0.0.1", 9003),
        }


def test_unreachable_server_keeps_the_bundle_list(tmp_path: Path) -> None:
    """Nothing answers on the port: every read times out, the bundle's list stays in force."""
    home = tmp_path / "home"
    publish(shop_spec([Instance("payments-a", 9001)]), home, tmp_path)
    port = free_port(socket.SOCK_DGRAM)
    settings = DiscoverySettings(
        retry_delay=0.1, failure_threshold=2, backoff_base=0.1, backoff_cap=0.2
    )
    discovery = DnsDiscovery(
        ZONE, nameservers=["127.0.0.1"], port=port, timeout=0.2, settings=settings
    )
    with Mesh.open(home, service="checkout", discovery=discovery) as mesh:
        assert mesh.discovery is not None
        wait_for(lambda: mesh.discovery.failures_total("payments") >= 3, 10, "three failed reads")
        assert [e.id for e in mesh.upstream("payments").endpoints] == ["payments-a"]
        assert mesh.discovery.answers("payments") == 0
