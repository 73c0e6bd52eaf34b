"""Fixtures for the simulator's tests: small meshes and scenarios written to tmp_path."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

MESH = """\
apiVersion: meshspec/v1
mesh:
  name: tiny
  datacenter: dc1
  dns: {zone: tiny.internal, ttl: 30s}
defaults:
  timeout: 2s
  retry: {attempts: 3, per_try_timeout: 500ms, backoff: {base: 10ms, max: 100ms}}
  circuit_breaker: off
  outlier_detection: off
  load_balancer: {strategy: round_robin}
  health_check: {http: /healthz, interval: 2s, timeout: 1s}
services:
  front:
    port: 8080
    instances: [{address: 10.0.0.1}, {address: 10.0.0.2}]
    upstreams:
      back: {}
  back:
    port: 9090
    instances: [{address: 10.0.1.1}, {address: 10.0.1.2}, {address: 10.0.1.3}, {address: 10.0.1.4}]
"""

SCENARIO = """\
apiVersion: meshspec/v1
kind: Scenario
name: tiny
mesh: mesh.yaml
duration: 20s
seed: 3
traffic:
  - {to: front, rate: 100/s}
behaviour:
  default: {latency: {median: 5ms, p99: 20ms}}
faults:
  - {at: 5s, for: 5s, service: back, instances: 50%, fault: crash}
expect:
  - front.success_rate >= 99%
"""


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """``write(name, text)``: a file in tmp_path (text dedented)."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return _write


@pytest.fixture
def tiny(write: Callable[[str, str], Path]) -> Path:
    """A two-service mesh and a 20 s scenario; returns the scenario's path."""
    write("mesh.yaml", MESH)
    return write("scenario.yaml", SCENARIO)
