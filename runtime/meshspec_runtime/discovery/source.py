"""What a discovery source is: a configuration (``Discovery``) that opens a client
(``Source``) which answers one :class:`~meshspec_runtime.discovery.cache.Query` at a time."""

from __future__ import annotations

from typing import Protocol

from meshspec_runtime.discovery.cache import Answer, DiscoverySettings, Query


class Source(Protocol):
    """An open client of a discovery source. ``query`` blocks (a thread runs it); it returns a
    ``Failed`` rather than raising for anything the source did wrong."""

    def query(self, service: str, query: Query) -> Answer: ...

    def close(self) -> None: ...


class Discovery(Protocol):
    """What ``Mesh.open(discovery=...)`` takes: ``ConsulDiscovery`` or ``DnsDiscovery``."""

    settings: DiscoverySettings

    def open(self) -> Source:
        """A client; raises ``ImportError`` naming the extra when its library is missing."""
        ...

    def describe(self) -> str: ...
