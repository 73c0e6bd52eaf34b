"""Discovery from DNS SRV records (extra ``meshspec-runtime[dns]``: dnspython).

The compiled zone lists each instance as ``_<service>._tcp.<zone> SRV 0 <weight> <port>
<instance-id>.<service>.<zone>``, and the instance name's address record. A read asks for the
SRV set, then each target's address (from the additional section when the server sent it), and
the answer is cached for the smallest TTL among the records used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.discovery.cache import Answer, DiscoverySettings, Failed, Found, Gone, Query

DEFAULT_TIMEOUT = 2.0


def import_dns() -> Any:
    try:
        import dns.exception
        import dns.message
        import dns.rdatatype
        import dns.resolver
    except ImportError:
        raise ImportError(
            "DNS discovery needs dnspython: pip install 'meshspec-runtime[dns]'"
        ) from None
    return dns


@dataclass(frozen=True)
class DnsDiscovery:
    """Endpoints from the SRV records of ``zone`` (the spec's ``mesh.dns.zone``), asked of
    ``nameservers`` on ``port``; the system's resolver configuration when none are given."""

    zone: str
    nameservers: Sequence[str] = ()
    port: int = 53
    timeout: float = DEFAULT_TIMEOUT
    settings: DiscoverySettings = field(default_factory=DiscoverySettings)

    def __post_init__(self) -> None:
        if not self.zone.strip(".") or " " in self.zone:
            raise ValueError(f"not a DNS zone: {self.zone!r}")
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be 1-65535, not {self.port}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, not {self.timeout}")

    def open(self) -> DnsSource:
        dns = import_dns()
        resolver = dns.resolver.Resolver(configure=not self.nameservers)
        if self.nameservers:
            resolver.nameservers = list(self.nameservers)
        resolver.port = self.port
        resolver.lifetime = self.timeout
        resolver.cache = None  # the discovery cache honours the TTLs itself
        return DnsSource(resolver, self.zone.strip("."))

    def describe(self) -> str:
        servers = ", ".join(self.nameservers) or "the system's resolvers"
        return f"DNS zone {self.zone} via {servers}"


class DnsSource:
    def __init__(self, resolver: Any, zone: str) -> None:
        self._resolver = resolver
        self._zone = zone
        self._dns = import_dns()

    def query(self, service: str, query: Query) -> Answer:
        dns = self._dns
        name = f"_{service}._tcp.{self._zone}."
        try:
            srv = self._resolver.resolve(name, "SRV", raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return Gone()
        except dns.exception.DNSException as error:
            return Failed(f"{type(error).__name__}: {error}")
        if srv.rrset is None:
            return Gone(ttl=_negative_ttl(srv.response))
        ttl = float(srv.rrset.ttl)
        endpoints = []
        try:
            for record in srv.rrset:
                target = record.target
                address, address_ttl = self._address(target, srv.response)
                ttl = min(ttl, address_ttl)
                instance = target.labels[0].decode("utf-8", "replace")
                endpoints.append(
                    Endpoint(
                        id=instance, address=address, port=record.port, weight=max(1, record.weight)
                    )
                )
        except dns.exception.DNSException as error:
            return Failed(f"{type(error).__name__}: {error}")
        return Found(tuple(endpoints), ttl=ttl)

    def _address(self, target: Any, response: Any) -> tuple[str, float]:
        dns = self._dns
        for rrset in response.additional:
            if rrset.name == target and rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                return str(next(iter(rrset))), float(rrset.ttl)
        for rdtype in ("A", "AAAA"):
            found = self._resolver.resolve(target, rdtype, raise_on_no_answer=False)
            if found.rrset is not None:
                return str(next(iter(found.rrset))), float(found.rrset.ttl)
        raise dns.resolver.NoAnswer(f"{target} has no address record")

    def close(self) -> None:
        return None


def _negative_ttl(response: Any) -> float | None:
    for rrset in response.authority:
        return float(rrset.ttl)
    return None
