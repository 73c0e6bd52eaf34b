"""Discovery from Consul's health endpoint (extra ``meshspec-runtime[consul]``: py-consul).

Each read is ``GET /v1/health/service/<name>`` as a blocking query: with the index of the last
answer it returns when the service's instances or any of their checks change (or after
``wait``). Every instance is listed with its checks, so the source can tell "no instance
passes" (keep the last known good set) from "no instance is registered" (the service is gone).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.discovery.cache import Answer, DiscoverySettings, Failed, Found, Gone, Query

PASSING = "passing"
CONNECT_TIMEOUT = 5.0
"""Seconds to connect to the agent or get a plain read's answer."""


def import_consul() -> Any:
    try:
        import consul
    except ImportError:
        raise ImportError(
            "Consul discovery needs py-consul: pip install 'meshspec-runtime[consul]'"
        ) from None
    return consul


def parse_address(address: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of ``http://127.0.0.1:8500``, ``127.0.0.1:8500`` or a bare
    host (port 8500). Raises ValueError for anything else."""
    parsed = urllib.parse.urlsplit(address if "//" in address else f"http://{address}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"not a Consul HTTP address: {address!r} (try http://127.0.0.1:8500)")
    if parsed.path not in ("", "/") or parsed.query:
        raise ValueError(f"a Consul address has no path or query: {address!r}")
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 8500)
    except ValueError:
        raise ValueError(f"bad port in Consul address {address!r}") from None
    return parsed.scheme, parsed.hostname, port


def client(address: str, token: str | None = None, datacenter: str | None = None) -> Any:
    """A py-consul client of the agent at ``address``."""
    consul = import_consul()
    scheme, host, port = parse_address(address)
    return consul.Consul(
        host=host,
        port=port,
        scheme=scheme,
        token=token,
        dc=datacenter,
        connections_timeout=CONNECT_TIMEOUT,
    )


@dataclass(frozen=True)
class ConsulDiscovery:
    """Endpoints from the Consul agent at ``address`` (its passing instances)."""

    address: str = "http://127.0.0.1:8500"
    token: str | None = None
    datacenter: str | None = None
    settings: DiscoverySettings = field(default_factory=DiscoverySettings)

    def __post_init__(self) -> None:
        parse_address(self.address)  # a bad address fails at Mesh.open, not in a thread

    def open(self) -> ConsulSource:
        return ConsulSource(client(self.address, self.token, self.datacenter))

    def describe(self) -> str:
        return f"consul at {self.address}"


class ConsulSource:
    def __init__(self, consul_client: Any) -> None:
        self._client = consul_client

    def query(self, service: str, query: Query) -> Answer:
        try:
            if query.index is None:
                index, entries = self._client.health.service(service)
            else:
                index, entries = self._client.health.service(
                    service, index=query.index, wait=f"{max(1, round(query.wait))}s"
                )
        except Exception as error:  # py-consul raises requests' and its own errors alike
            return Failed(f"{type(error).__name__}: {error}")
        try:
            parsed_index = int(index)
        except (TypeError, ValueError):
            parsed_index = 0
        try:
            return answer(entries, parsed_index)
        except (KeyError, TypeError, ValueError) as error:
            return Failed(f"unexpected answer from Consul: {error!r}")

    def close(self) -> None:
        self._client.http.close()


def answer(entries: list[dict[str, Any]], index: int) -> Answer:
    """The health endpoint's entries as an answer: the instances whose checks all pass."""
    if not entries:
        return Gone(index=index)
    passing = []
    for entry in entries:
        if all(check.get("Status") == PASSING for check in entry.get("Checks") or ()):
            service = entry["Service"]
            address = service.get("Address") or entry["Node"]["Address"]
            weight = (service.get("Weights") or {}).get("Passing") or 1
            passing.append(
                Endpoint(id=service["ID"], address=address, port=service["Port"], weight=weight)
            )
    return Found(tuple(passing), index=index)
