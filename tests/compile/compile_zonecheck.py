"""Checks of a compiled zone against its real consumers, shared by the DNS tests."""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.resolver
from support import require_binary

from meshspec.compile.ir import ResolvedMesh


def named_checkzone(zone: str, zonefile: Path) -> str:
    """Run named-checkzone; return its output, failing the test when it rejects the zone."""
    checker = require_binary("named-checkzone", extra_dirs=[Path("/usr/sbin")])
    result = subprocess.run(
        [str(checker), zone, str(zonefile)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _name(zone: str, *labels: str) -> dns.name.Name:
    """A DNS name from raw labels (no escaping: what a client asks for)."""
    return dns.name.Name([*(label.encode() for label in labels), *dns.name.from_text(zone).labels])


def _addresses(resolver: dns.resolver.Resolver, name: dns.name.Name) -> set[str]:
    found: set[str] = set()
    for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        answer = resolver.resolve(name, rdtype, raise_on_no_answer=False)
        found.update(rdata.to_text() for rdata in answer)
    return found


def assert_serves_exactly(resolver: dns.resolver.Resolver, mesh: ResolvedMesh) -> int:
    """SRV and A/AAAA answers give back exactly each service's endpoints. Returns how many
    endpoints were checked."""
    checked = 0
    for service in mesh.services:
        expected = {
            (ipaddress.ip_address(e.address).compressed, e.port, e.weight)
            for e in service.endpoints
        }
        srv = resolver.resolve(_name(mesh.zone, f"_{service.name}", "_tcp"), "SRV")
        served = set()
        for rdata in srv:
            (address,) = _addresses(resolver, rdata.target)
            served.add((address, rdata.port, rdata.weight))
        assert served == expected, service.name
        assert len(srv) == len(service.endpoints)
        round_robin = _addresses(resolver, _name(mesh.zone, service.name))
        assert round_robin == {address for address, _port, _weight in expected}
        for endpoint in service.endpoints:
            instance = _addresses(resolver, _name(mesh.zone, endpoint.id, service.name))
            assert instance == {ipaddress.ip_address(endpoint.address).compressed}
            checked += 1
    return checked
