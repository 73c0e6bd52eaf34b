"""Live discovery: a bundle's upstream endpoints kept current from Consul or DNS.

``cache`` holds the sans-I/O state (last known good set, staleness, the source's breaker);
``consul`` and ``dns`` are the sources (extras ``meshspec-runtime[consul]``/``[dns]``,
imported only when used); ``watch`` drives one cache per upstream service in a thread (or an
asyncio task) and publishes what it decides to the mesh's policies.
"""

from __future__ import annotations

from meshspec_runtime.discovery.cache import (
    DiscoveryCache,
    DiscoverySettings,
    Failed,
    Found,
    Gone,
    Query,
    Signal,
    Sleep,
    Update,
)
from meshspec_runtime.discovery.source import Discovery, Source

__all__ = [
    "ConsulDiscovery",
    "Discovery",
    "DiscoveryCache",
    "DiscoverySettings",
    "DnsDiscovery",
    "Failed",
    "Found",
    "Gone",
    "Query",
    "Signal",
    "Sleep",
    "Source",
    "Update",
]


def __getattr__(name: str) -> object:
    # the sources' modules import nothing optional at the top, but keep them off the import
    # path of a mesh that uses neither
    if name == "ConsulDiscovery":
        from meshspec_runtime.discovery.consul import ConsulDiscovery

        return ConsulDiscovery
    if name == "DnsDiscovery":
        from meshspec_runtime.discovery.dns import DnsDiscovery

        return DnsDiscovery
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
