"""The compiled alert rules against promtool, and against the metric names docs/metrics.md lists."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import yaml
from compile_support import TOOLS_DIRS, ir_mesh
from hypothesis import given
from hypothesis import strategies as st
from support import REPO, require_binary

from meshspec.compile.emitters import prometheus
from meshspec.compile.pipeline import BuiltBundle, build_bundle
from meshspec.compile.templating import yaml_string


def promtool_check(rules: Path) -> str:
    promtool = require_binary("promtool", extra_dirs=TOOLS_DIRS)
    result = subprocess.run(
        [str(promtool), "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_promtool_accepts_the_rules(built: BuiltBundle, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_bytes(built.files[prometheus.PATH])
    # two edges: two error-ratio alerts, one breaker alert, one budget alert (payments only)
    assert "SUCCESS: 4 rules found" in promtool_check(rules)


def test_rules_follow_each_edges_policy_and_objective(built: BuiltBundle) -> None:
    groups = yaml.safe_load(built.files[prometheus.PATH])["groups"]
    assert [g["name"] for g in groups] == ["meshspec:shop:checkout"]
    alerts = {(r["alert"], r["labels"]["upstream"]): r for r in groups[0]["rules"]}
    assert set(alerts) == {
        ("MeshspecUpstreamErrorRatioHigh", "inventory"),
        ("MeshspecUpstreamErrorRatioHigh", "payments"),
        ("MeshspecCircuitBreakerOpen", "payments"),
        ("MeshspecRetryBudgetExhausted", "payments"),
    }
    assert alerts["MeshspecUpstreamErrorRatioHigh", "payments"]["expr"].endswith("> 0.001")
    assert alerts["MeshspecUpstreamErrorRatioHigh", "inventory"]["expr"].endswith("> 0.01")


def test_label_values_are_quoted_and_escaped(tmp_path: Path) -> None:
    base = ir_mesh()
    checkout = dataclasses.replace(base.services[0], name='check"out\\x\né\t')
    mesh = dataclasses.replace(base, services=(checkout, *base.services[1:]))
    rules = tmp_path / "rules.yml"
    rules.write_bytes(build_bundle(mesh, "0" * 64).files[prometheus.PATH])
    promtool_check(rules)
    rule = yaml.safe_load(rules.read_text())["groups"][0]["rules"][0]
    assert rule["labels"]["caller"] == 'check"out\\x\né\t'
    assert 'caller="check\\"out\\\\x\\né\t"' in rule["expr"]


def test_every_metric_the_rules_use_is_documented(built: BuiltBundle) -> None:
    documented = set(re.findall(r"`(meshspec_[a-z_]+)`", (REPO / "docs/metrics.md").read_text()))
    used = set(re.findall(r"\b(meshspec_[a-z_]+)\{", built.files[prometheus.PATH].decode()))
    assert used == {
        "meshspec_upstream_requests_total",
        "meshspec_circuit_breaker_state",
        "meshspec_retry_budget_exhausted_total",
    }
    assert used <= documented


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",))))
def test_yaml_string_holds_any_text(text: str) -> None:
    assert yaml.safe_load("value: " + yaml_string(text))["value"] == text
