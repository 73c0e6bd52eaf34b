"""Placeholders for the values that depend on the finished bundle.

Consul meta and ``policy.json`` carry the bundle version, the zone's SOA carries a serial, yet
the version is a digest of the files. Emitters therefore write these placeholders; the pipeline
digests the placeholder-bearing files into the version (so the version depends on content only,
never on itself or on the serial), then substitutes the real values. A spec value containing a
placeholder verbatim would be substituted too; the ``@@`` markers are not valid in any name the
spec accepts.
"""

from __future__ import annotations

VERSION = "@@MESHSPEC_BUNDLE_VERSION@@"
SERIAL = "@@MESHSPEC_SOA_SERIAL@@"

VERSION_BYTES = VERSION.encode()
SERIAL_BYTES = SERIAL.encode()


def substitute(content: bytes, version: str, serial: int) -> bytes:
    """``content`` with both placeholders replaced (a no-op scan when it has none)."""
    if VERSION_BYTES in content:
        content = content.replace(VERSION_BYTES, version.encode())
    if SERIAL_BYTES in content:
        content = content.replace(SERIAL_BYTES, str(serial).encode())
    return content
