"""One emitter per bundle target. Adding a target means adding a module and one line below.

An emitter takes the resolved mesh and returns ``{path relative to the bundle: bytes}``; it
writes nothing itself. Values that depend on the finished bundle (its version, the SOA serial)
are written as the placeholders of ``meshspec.compile.stamp``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from meshspec.compile.emitters import consul_entries, consul_services, dns, policy, prometheus
from meshspec.compile.ir import ResolvedMesh

Emitter = Callable[[ResolvedMesh], Mapping[str, bytes]]

EMITTERS: tuple[Emitter, ...] = (
    policy.emit,
    consul_services.emit,
    consul_entries.emit,
    dns.emit,
    prometheus.emit,
)
