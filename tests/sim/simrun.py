"""Running scenarios from tests: load (with an environment or YAML edits) and summarise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from meshspec.sim.load import LoadedScenario, load_mesh, load_scenario
from meshspec.sim.runner import Source, run_once
from meshspec.sim.scenario import Scenario

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


def run(
    path: Path, env: str | None = None, seed: int | None = None, **edits: Any
) -> dict[str, Any]:
    """Summary of one run of the scenario at ``path``; ``edits`` replace top-level keys."""
    loaded, mesh = Source(path, env=env).load()
    if edits:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data.update(edits)
        scenario = Scenario.model_validate(data)
        loaded = LoadedScenario(path, scenario, loaded.expectations, loaded.mesh_path)
    return run_once(loaded, mesh, loaded.scenario.seed if seed is None else seed)


__all__ = ["LoadedScenario", "load_mesh", "load_scenario", "run"]
