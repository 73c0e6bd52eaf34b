"""W0402 (hedging and retries together beyond what the budget bounds) and hedges in the
amplification that W0101 reports."""

from __future__ import annotations

from pathlib import Path

from meshspec.lint import lint
from meshspec.spec.loader import load_spec_located

SPEC = """\
apiVersion: meshspec/v1
mesh:
  name: shop
  dns: {zone: shop.internal}
defaults:
  circuit_breaker: off
  health_check: off
services:
  web:
    port: 8080
    instances: [{address: 10.0.0.1}]
    upstreams:
      api: EDGE
  api:
    port: 8081
    instances: [{address: 10.0.1.1}, {address: 10.0.1.2}]
    lint: {latency: 20ms}
"""


def _warnings(tmp_path: Path, edge: str) -> list[str]:
    path = tmp_path / "mesh.yaml"
    path.write_text(SPEC.replace("EDGE", edge))
    spec, provenance = load_spec_located(path)
    return [f"{w.code} {w.line}:{w.column} {w.message}" for w in lint(spec, provenance).warnings]


def test_hedges_and_retries_without_a_budget_are_flagged_at_the_hedge(tmp_path: Path) -> None:
    edge = "{retry: {attempts: 3}, hedge: {delay: 50ms, max_attempts: 3}}"
    (warning,) = _warnings(tmp_path, edge)
    assert warning.startswith("W0402 13:")
    assert "up to 3 attempts" in warning and "up to 2 more" in warning
    assert "5 attempts per call" in warning


def test_hedges_alone_or_retries_alone_are_not_flagged(tmp_path: Path) -> None:
    assert _warnings(tmp_path, "{retry: off, hedge: {delay: 50ms}}") == []
    assert _warnings(tmp_path, "{retry: {attempts: 3}}") == []


def test_a_budget_bounds_hedges_and_retries_together(tmp_path: Path) -> None:
    edge = "{retry: {attempts: 3, budget: {ratio: 10%}}, hedge: {delay: 50ms}}"
    assert _warnings(tmp_path, edge) == []


def test_a_hedge_delay_below_the_typical_latency_drains_the_budget(tmp_path: Path) -> None:
    edge = "{retry: {attempts: 3, budget: {ratio: 10%}}, hedge: {delay: 10ms}}"
    (warning,) = _warnings(tmp_path, edge)
    assert warning.startswith("W0402 13:")
    assert "hedge.delay (10ms) is not above api's typical latency (20ms" in warning
    assert "retry budget's 10%" in warning
    # a budget that lets half the requests hedge is not flagged
    roomy = "{retry: {attempts: 3, budget: {ratio: 50%}}, hedge: {delay: 10ms}}"
    assert _warnings(tmp_path, roomy) == []


def test_amplification_counts_the_hedges(tmp_path: Path) -> None:
    path = tmp_path / "mesh.yaml"
    edge = "{retry: {attempts: 2}, hedge: {delay: 50ms, max_attempts: 4}}"
    path.write_text(SPEC.replace("EDGE", edge))
    spec, provenance = load_spec_located(path)
    report = lint(spec, provenance, ignore={"W0402"})
    assert report.amplification["api"].factor == 5  # 4 hedged attempts, then 1 retry
