"""Fixtures for the sweep's tests: the simulator's tiny two-service mesh, a short scenario."""

from __future__ import annotations

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
  retry:
    attempts: 2
    per_try_timeout: 300ms
    backoff: {base: 10ms, max: 100ms}
    budget: {ratio: 20%, min_per_second: 1/s}
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
duration: 8s
seed: 3
traffic:
  - {to: front, rate: 40/s}
behaviour:
  default: {latency: {median: 5ms, p99: 20ms}}
faults:
  - {at: 1s, service: back, fault: errors, rate: 30%}
expect:
  - front.success_rate >= 97%
  - front->back.load_amplification <= 1.45
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """The scenario's path (its mesh beside it)."""
    (tmp_path / "mesh.yaml").write_text(MESH, encoding="utf-8")
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    return path
