"""Helpers of the integration tests: a bundle compiled for upstreams on loopback ports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from meshspec.compile.api import compile_spec

DEFAULT_POLICY: Mapping[str, Any] = {
    "timeout": "3s",
    "retry": {
        "attempts": 3,
        "per_try_timeout": "500ms",
        "backoff": {"base": "1ms", "max": "5ms"},
        "on": ["connect-failure", "timeout", "reset", "5xx"],
    },
    "outlier_detection": {
        "consecutive_failures": 2,
        "base_ejection": "30s",
        "max_ejected": "70%",
    },
    "load_balancer": {"strategy": "round_robin"},
}


def compile_mesh(
    folder: Path,
    upstreams: Mapping[str, Sequence[int]],
    *,
    policy: Mapping[str, Any] = DEFAULT_POLICY,
    protocol: str = "http",
    caller: str = "checkout",
) -> Path:
    """Compile a mesh where ``caller`` calls each upstream, whose instances listen on
    127.0.0.1 at the given ports, with ``policy`` on every edge; return the bundle's path."""
    services: dict[str, Any] = {
        caller: {
            "port": 8080,
            "instances": [{"address": "127.0.0.1"}],
            "upstreams": {name: {} for name in upstreams},
        }
    }
    for name, ports in upstreams.items():
        services[name] = {
            "port": ports[0],
            "protocol": protocol,
            "instances": [{"address": "127.0.0.1", "port": port} for port in ports],
        }
    spec = {
        "apiVersion": "meshspec/v1",
        "mesh": {"name": "test", "datacenter": "dc1", "dns": {"zone": "test.mesh.internal"}},
        "defaults": dict(policy),
        "services": services,
    }
    source = folder / "mesh.yaml"
    source.write_text(yaml.safe_dump(spec, sort_keys=False))
    out = folder / "bundle"
    compile_spec(source, out)
    return out
