"""``retry.budget``'s kind and scope in the spec language: lowered into the bundle's policy,
and a budget of mixed shapes refused with a located error."""

from __future__ import annotations

from pathlib import Path

import pytest
from meshspec_runtime.policy.config import BudgetScope, RetryBudgetConfig

from meshspec.spec import SpecError, edge_policy, load_spec

SPEC = """\
apiVersion: meshspec/v1
mesh:
  name: shop
  dns: {zone: shop.mesh.internal}
defaults:
  retry:
    budget: {ratio: 20%, min_per_second: 5/s}
services:
  web:
    port: 8080
    instances: [{address: 10.0.0.1}, {address: 10.0.0.2}]
    upstreams:
      api:
        retry:
          budget: BUDGET
  api:
    port: 8081
    instances: [{address: 10.0.1.1}]
"""


def _spec(tmp_path: Path, budget: str, default: str = "{ratio: 20%, min_per_second: 5/s}") -> Path:
    path = tmp_path / "mesh.yaml"
    text = SPEC.replace("BUDGET", budget)
    path.write_text(text.replace("{ratio: 20%, min_per_second: 5/s}", default))
    return path


def test_a_shared_bucket_is_lowered_whole(tmp_path: Path) -> None:
    budget = "{kind: bucket, ratio: 10%, cap: 10, threshold: 5, scope: service}"
    spec = load_spec(_spec(tmp_path, budget, default="{ratio: 20%}"))
    lowered = edge_policy(spec, "web", "api").retry.budget
    assert lowered is not None
    assert (lowered.kind, lowered.ratio, lowered.cap, lowered.threshold, lowered.fill) == (
        "bucket",
        0.1,
        10,
        5,
        10,
    )
    assert lowered.scope is BudgetScope.SERVICE


def test_a_window_budget_keeps_its_default_process_scope(tmp_path: Path) -> None:
    spec = load_spec(_spec(tmp_path, "{ratio: 10%}"))
    lowered = edge_policy(spec, "web", "api").retry.budget
    assert lowered is not None and lowered.scope is BudgetScope.PROCESS
    assert (lowered.kind, lowered.min_per_second) == ("window", 5)  # inherited


def test_a_bucket_over_an_inherited_window_field_is_a_located_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as raised:
        load_spec(_spec(tmp_path, "{kind: bucket, cap: 10}"))
    text = str(raised.value)
    assert "E0212" in text and "min_per_second applies to a retry budget of kind window" in text
    assert "mesh.yaml:13:7" in text  # the edge


def test_an_unknown_scope_is_refused_where_it_is_written(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as raised:
        load_spec(_spec(tmp_path, "{scope: region}"))
    assert "mesh.yaml:15:27" in str(raised.value) and "scope" in str(raised.value)


def test_the_spec_spells_the_runtimes_kinds_and_scopes() -> None:
    from typing import get_args

    from meshspec.spec.models import RetryBudgetSpec

    fields = RetryBudgetSpec.model_fields
    kinds = get_args(get_args(fields["kind"].annotation)[0])
    scopes = get_args(get_args(fields["scope"].annotation)[0])
    assert set(kinds) == set(get_args(RetryBudgetConfig.model_fields["kind"].annotation))
    assert set(scopes) == {scope.value for scope in BudgetScope}
