"""``hedge:`` in the spec language: inherited from the defaults like any policy, lowered into
the bundle's policy, switched off with ``off``, and refused with located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshspec.spec import SpecError, edge_policy, load_spec

SPEC = """\
apiVersion: meshspec/v1
mesh:
  name: shop
  dns: {zone: shop.mesh.internal}
defaults:
  hedge: DEFAULT
services:
  web:
    port: 8080
    instances: [{address: 10.0.0.1}]
    upstreams:
      api:
        hedge: EDGE
      db: {}
  api:
    port: 8081
    instances: [{address: 10.0.1.1}, {address: 10.0.1.2}]
  db:
    port: 8082
    instances: [{address: 10.0.2.1}]
"""


def _spec(tmp_path: Path, default: str, edge: str) -> Path:
    path = tmp_path / "mesh.yaml"
    path.write_text(SPEC.replace("DEFAULT", default).replace("EDGE", edge))
    return path


def test_an_edge_inherits_the_default_hedge_and_overrides_a_field(tmp_path: Path) -> None:
    spec = load_spec(
        _spec(tmp_path, "{delay: 50ms, non_fatal: [503, timeout]}", "{max_attempts: 3}")
    )
    hedge = edge_policy(spec, "web", "api").hedge
    assert hedge is not None
    assert (hedge.delay, hedge.max_attempts, hedge.non_fatal) == (0.05, 3, ("503", "timeout"))
    plain = edge_policy(spec, "web", "db").hedge
    assert plain is not None and plain.max_attempts == 2  # the default's, with its default


def test_off_switches_an_inherited_hedge_off(tmp_path: Path) -> None:
    spec = load_spec(_spec(tmp_path, "{delay: 50ms}", "off"))
    assert edge_policy(spec, "web", "api").hedge is None
    assert edge_policy(spec, "web", "db").hedge is not None


def test_a_hedge_without_a_delay_anywhere_is_a_located_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as raised:
        load_spec(_spec(tmp_path, "off", "{max_attempts: 3}"))
    text = str(raised.value)
    assert "E0215" in text and "hedge needs 'delay'" in text
    assert "mesh.yaml:13:16" in text  # the value of the edge's hedge


def test_max_attempts_beyond_the_limit_is_a_located_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as raised:
        load_spec(_spec(tmp_path, "off", "{delay: 10ms, max_attempts: 6}"))
    text = str(raised.value)
    assert "max_attempts" in text and "mesh.yaml:13:" in text


def test_a_percentile_delay_is_kept_as_written(tmp_path: Path) -> None:
    spec = load_spec(_spec(tmp_path, "off", "{delay: p99.9}"))
    hedge = edge_policy(spec, "web", "api").hedge
    assert hedge is not None and hedge.delay == "p99.9"


def test_a_delay_that_is_neither_a_duration_nor_a_percentile_is_a_located_error(
    tmp_path: Path,
) -> None:
    with pytest.raises(SpecError) as raised:
        load_spec(_spec(tmp_path, "off", "{delay: p100}"))
    assert "mesh.yaml:13:" in str(raised.value) and "duration" in str(raised.value)
