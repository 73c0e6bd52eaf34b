"""``dns/<zone>.zone``: an RFC 1035 master file rendered from ``templates/zone.j2``.

Per service: ``<service>.<zone>`` with every instance's address (round robin), one
``<instance-id>.<service>.<zone>`` per instance, and ``_<service>._tcp.<zone>`` SRV records
pointing at the instance names. Labels are escaped (RFC 1035 section 5.1) whatever validation
let through. The SOA serial is the ``stamp.SERIAL`` placeholder: the pipeline fills it in.
"""

from __future__ import annotations

import ipaddress
import socket

from meshspec.compile import stamp
from meshspec.compile.ir import ResolvedMesh
from meshspec.compile.paths import file_name
from meshspec.compile.templating import render

FOLDER = "dns"
NAMESERVER_ADDRESS = "127.0.0.1"
"""The zone's NS is its apex, with this address: the zone is served by a server next to each
service. The apex cannot collide with a service name, unlike an ``ns`` label could."""
# SOA timers (seconds): refresh, retry, expire; the negative-caching TTL is the spec's TTL.
SOA_REFRESH = 3600
SOA_RETRY = 600
SOA_EXPIRE = 604800


def zone_path(zone: str) -> str:
    return f"{FOLDER}/{file_name(zone.lower())}.zone"


def emit(mesh: ResolvedMesh) -> dict[str, bytes]:
    content = render(
        "zone.j2",
        origin=escape_name(mesh.zone) + ".",
        ttl=mesh.dns_ttl,
        serial=stamp.SERIAL,
        refresh=SOA_REFRESH,
        retry=SOA_RETRY,
        expire=SOA_EXPIRE,
        records="\n".join(records(mesh)),
    )
    return {zone_path(mesh.zone): content}


def records(mesh: ResolvedMesh) -> list[str]:
    """Every record after the SOA and NS, one master-file line each (``owner IN type data``,
    the owner relative to $ORIGIN). Built as text, not through the template: a large mesh has
    hundreds of thousands of records."""
    rtype, data = _address(NAMESERVER_ADDRESS)
    out = [f"@ IN {rtype} {data}"]
    append = out.append
    for service in mesh.services:
        label = escape_label(service.name)
        srv_owner = f"_{label}._tcp"
        endpoints = service.endpoints
        addresses = [_address(endpoint.address) for endpoint in endpoints]  # parsed once
        instance_names = [f"{escape_label(endpoint.id)}.{label}" for endpoint in endpoints]
        for name, (rtype, data) in zip(instance_names, addresses, strict=True):
            append(f"{name} IN {rtype} {data}")
        for rtype, data in addresses:
            if rtype != "CNAME":  # a name has one CNAME or addresses, not both
                append(f"{label} IN {rtype} {data}")
        for endpoint, name in zip(endpoints, instance_names, strict=True):
            append(f"{srv_owner} IN SRV 0 {endpoint.weight} {endpoint.port} {name}")
    return out


def _address(address: str) -> tuple[str, str]:
    """The record type and data that make a name resolve to ``address``."""
    try:  # inet_pton: the C parser, much faster than ipaddress on tens of thousands of records
        socket.inet_pton(socket.AF_INET, address)
    except OSError:
        pass
    else:
        return "A", address
    try:
        parsed = ipaddress.IPv6Address(address)
    except ValueError:  # a host name: the instance name is an alias of it
        return "CNAME", escape_name(address.rstrip(".")) + "."
    return "AAAA", parsed.compressed


def escape_name(name: str) -> str:
    return ".".join(escape_label(label) for label in name.split("."))


_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def escape_label(label: str) -> str:
    """One label in master-file syntax: anything but letters, digits, - and _ as \\DDD."""
    if _PLAIN.issuperset(label):
        return label
    return "".join(
        char if char in _PLAIN else "".join(f"\\{byte:03d}" for byte in char.encode())
        for char in label
    )
