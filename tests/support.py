"""Helpers shared by tests that need real binaries and servers.

A test that needs a binary skips with a clear reason on a developer's machine that lacks it,
and fails instead when ``MESHSPEC_REQUIRE_SERVICES=1`` (which ``.ci/run`` sets after
installing everything).
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def services_required() -> bool:
    return os.environ.get("MESHSPEC_REQUIRE_SERVICES") == "1"


def missing(reason: str) -> None:
    """Skip the test, or fail it when services are required."""
    if services_required():
        pytest.fail(f"{reason} (MESHSPEC_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def require_binary(name: str, extra_dirs: Iterable[Path] = ()) -> Path:
    """Path of executable ``name`` on PATH or in ``extra_dirs``, or skip/fail the test."""
    for folder in extra_dirs:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found is None:
        missing(f"{name} not found on PATH; .ci/run shows how to install it")
        raise AssertionError("unreachable")
    return Path(found)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that was free a moment ago, for TCP or UDP."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# NSD serving one zone on loopback, as the zone and discovery tests run it (``str.format``).
NSD_CONF = """\
server:
    ip-address: 127.0.0.1
    port: {port}
    do-ip6: no
    zonesdir: "{root}"
    pidfile: "{root}/nsd.pid"
    xfrdfile: "{root}/xfrd.state"
    zonelistfile: "{root}/zone.list"
    database: ""
    logfile: "{root}/nsd.log"
    username: ""
    chroot: ""
    server-count: 1
    verbosity: 1
remote-control:
    control-enable: no
zone:
    name: "{zone}"
    zonefile: "{zonefile}"
"""
