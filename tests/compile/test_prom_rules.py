"""The compiled alert rules and their promtool unit tests, against promtool, against the metric
table of the runtime (observe/names.py), and against docs/metrics.md."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from compile_support import TOOLS_DIRS, ir_mesh
from hypothesis import given
from hypothesis import strategies as st
from meshspec_runtime.observe import names
from meshspec_runtime.policy.config import UpstreamPolicy
from support import REPO, require_binary

from meshspec.compile import compile_spec
from meshspec.compile.emitters import prometheus
from meshspec.compile.ir import ResolvedMesh
from meshspec.compile.pipeline import BuiltBundle, build_bundle
from meshspec.compile.resolve import resolve_mesh
from meshspec.compile.templating import promql_string, yaml_string
from meshspec.spec import load_spec

sys.path.insert(0, str(REPO / "benchmarks"))

from gen_spec import generate
from rules_size import legacy_rules


def promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    binary = require_binary("promtool", extra_dirs=TOOLS_DIRS)
    return subprocess.run(
        [str(binary), *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def promtool_check(rules: Path) -> str:
    result = promtool("check", "rules", rules)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def promtool_test(bundle: Path) -> str:
    """``promtool test rules`` run inside the bundle's prometheus folder, as its header says."""
    result = promtool("test", "rules", Path(prometheus.TEST_PATH).name, cwd=bundle / "prometheus")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def write_rules(files: dict[str, bytes], folder: Path) -> Path:
    for path in (prometheus.PATH, prometheus.TEST_PATH):
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(files[path])
    return folder


def rules_of(files: dict[str, bytes]) -> dict[str, list[dict[str, Any]]]:
    groups = yaml.safe_load(files[prometheus.PATH])["groups"]
    return {group["name"]: group["rules"] for group in groups}


def objectives_of(files: dict[str, bytes]) -> dict[tuple[str, str], dict[str, Any]]:
    series = rules_of(files)["meshspec:shop:objectives"]
    assert all(rule["record"] == prometheus.OBJECTIVE for rule in series)
    return {(rule["labels"]["caller"], rule["labels"]["upstream"]): rule for rule in series}


def replace_edges(mesh: ResolvedMesh, caller: str, **changes: Any) -> ResolvedMesh:
    """``mesh`` with every edge of ``caller`` changed by ``dataclasses.replace(**changes)``."""
    services = tuple(
        dataclasses.replace(
            service, edges=tuple(dataclasses.replace(e, **changes) for e in service.edges)
        )
        if service.name == caller
        else service
        for service in mesh.services
    )
    return dataclasses.replace(mesh, services=services)


def test_promtool_accepts_the_rules_and_their_tests_pass(
    built: BuiltBundle, tmp_path: Path
) -> None:
    folder = write_rules(built.files, tmp_path)
    # two objective series, the error-ratio recording rule, three alerts
    assert "SUCCESS: 6 rules found" in promtool_check(folder / prometheus.PATH)
    assert "SUCCESS" in promtool_test(folder)


def test_one_objective_series_per_edge_and_alerts_by_edge(built: BuiltBundle) -> None:
    objectives = objectives_of(built.files)
    assert {edge: rule["expr"] for edge, rule in objectives.items()} == {
        ("checkout", "inventory"): "0.99",
        ("checkout", "payments"): "0.999",
    }
    assert all(set(rule["labels"]) == {"caller", "upstream"} for rule in objectives.values())
    rules = rules_of(built.files)["meshspec:shop:alerts"]
    assert rules[0] == {"record": prometheus.ERROR_RATIO, "expr": prometheus.error_ratio_expr()}
    alerts = {rule["alert"]: rule for rule in rules[1:]}
    assert list(alerts) == [
        "MeshspecUpstreamErrorRatioHigh",
        "MeshspecCircuitBreakerOpen",
        "MeshspecRetryBudgetExhausted",
    ]
    assert [alert["for"] for alert in alerts.values()] == ["5m", "1m", "5m"]
    for alert in alerts.values():
        assert alert["labels"] == {"severity": alert["labels"]["severity"], "mesh": "shop"}
        assert (
            " by (caller, upstream) " in alert["expr"] or "on (caller, upstream)" in alert["expr"]
        )
    assert alerts["MeshspecUpstreamErrorRatioHigh"]["labels"]["severity"] == "page"
    assert alerts["MeshspecUpstreamErrorRatioHigh"]["expr"] == (
        "meshspec:upstream_error_ratio:rate5m > on (caller, upstream) "
        '(1 - meshspec:objective:ratio{alert_after=""})'
    )


def test_breaker_and_budget_alerts_only_when_some_edge_has_one() -> None:
    plain = replace_edges(ir_mesh(), "checkout", policy=UpstreamPolicy())
    files = build_bundle(plain, "0" * 64).files
    alerts = [rule.get("alert") for rule in rules_of(files)["meshspec:shop:alerts"]]
    assert alerts == [None, "MeshspecUpstreamErrorRatioHigh"]
    assert b"MeshspecCircuitBreakerOpen" not in files[prometheus.TEST_PATH]


def test_each_distinct_alert_after_gets_its_own_alert(tmp_path: Path) -> None:
    mesh = replace_edges(ir_mesh(), "checkout", alert_after=90.0)
    base = mesh.service("checkout")
    faster = dataclasses.replace(base.edges[1], alert_after=2.5)
    mesh = dataclasses.replace(
        mesh,
        services=(dataclasses.replace(base, edges=(base.edges[0], faster)), *mesh.services[1:]),
    )
    files = build_bundle(mesh, "0" * 64).files
    labels = {edge: rule["labels"] for edge, rule in objectives_of(files).items()}
    assert labels["checkout", "inventory"]["alert_after"] == "1m30s"
    assert labels["checkout", "payments"]["alert_after"] == "2s500ms"
    ratio_alerts = [
        rule
        for rule in rules_of(files)["meshspec:shop:alerts"]
        if rule.get("alert") == "MeshspecUpstreamErrorRatioHigh"
    ]
    assert [(rule["for"], rule["expr"].rsplit("{", 1)[1]) for rule in ratio_alerts] == [
        ("2s500ms", 'alert_after="2s500ms"})'),
        ("1m30s", 'alert_after="1m30s"})'),
    ]
    assert "SUCCESS" in promtool_test(write_rules(files, tmp_path))


def test_label_values_are_quoted_and_escaped(tmp_path: Path) -> None:
    base = ir_mesh()
    odd = 'check"out\\x\né\t'
    checkout = dataclasses.replace(base.services[0], name=odd)
    mesh = dataclasses.replace(base, services=(checkout, *base.services[1:]))
    files = build_bundle(mesh, "0" * 64).files
    folder = write_rules(files, tmp_path)
    promtool_check(folder / prometheus.PATH)
    series = rules_of(files)["meshspec:shop:objectives"]
    assert {rule["labels"]["caller"] for rule in series} == {odd}
    # the unit tests feed series and expect alerts labelled with the odd name, and pass
    assert "SUCCESS" in promtool_test(folder)
    first = yaml.safe_load(files[prometheus.TEST_PATH])["tests"][0]["input_series"][0]
    assert f"caller={promql_string(odd)}," in first["series"]


def test_the_unit_tests_fail_when_a_rule_misses_its_objective(
    built: BuiltBundle, tmp_path: Path
) -> None:
    """The generated tests check the thresholds, not only that the rules load."""
    folder = write_rules(built.files, tmp_path)
    rules = folder / prometheus.PATH
    lax = rules.read_text().replace('expr: "0.999"', 'expr: "0.99"')
    assert lax != rules.read_text()
    rules.write_text(lax)
    result = promtool("test", "rules", "rules.test.yml", cwd=folder / "prometheus")
    assert result.returncode != 0
    assert "MeshspecUpstreamErrorRatioHigh" in result.stdout + result.stderr


@pytest.mark.parametrize("services", [40, 400])
def test_generated_meshes_pass_their_unit_tests(services: int, tmp_path: Path) -> None:
    spec = tmp_path / "big.yaml"
    spec.write_text(generate(services, instances=1, upstreams=3))
    out = compile_spec(spec, tmp_path / "bundle").folder  # the version published
    promtool_check(out / prometheus.PATH)
    output = promtool_test(out)
    assert "SUCCESS" in output
    tests = yaml.safe_load((out / prometheus.TEST_PATH).read_text())["tests"]
    fed = {series["series"] for series in tests[0]["input_series"]}
    # the generator's edges have two objectives (99.9% default, 99.5%): one edge each
    assert sum('outcome="error"' in series for series in fed) == 2


def test_rules_shrink_tenfold_on_a_large_mesh(tmp_path: Path) -> None:
    """The size benchmark (benchmarks/rules_size.py) prints the 5,000-service figures."""
    spec = tmp_path / "big.yaml"
    spec.write_text(generate(500, instances=1, upstreams=3))
    mesh = resolve_mesh(load_spec(spec))
    edges = sum(len(service.edges) for service in mesh.services)
    assert edges > 1400
    new = len(prometheus.emit(mesh)[prometheus.PATH])
    old = len(legacy_rules(mesh))
    assert new * 10 <= old, f"{new} bytes now, {old} before"


def test_every_metric_the_rules_use_is_one_the_runtime_exports(built: BuiltBundle) -> None:
    exported = {metric.name for metric in names.METRICS}
    for path in (prometheus.PATH, prometheus.TEST_PATH):
        used = set(re.findall(r"\b(meshspec_[a-z_]+)", built.files[path].decode()))
        assert used == {
            names.REQUESTS.name,
            names.BREAKER_STATE.name,
            names.BUDGET_EXHAUSTED.name,
        }
        assert used <= exported
    assert prometheus.SUCCESS in names.OUTCOMES
    assert prometheus.FAILED in names.OUTCOMES


def doc_table(heading: str) -> list[list[str]]:
    """The rows of the first table after ``heading`` in docs/metrics.md, cells stripped."""
    text = (REPO / "docs/metrics.md").read_text(encoding="utf-8")
    assert f"\n{heading}\n" in text, f"docs/metrics.md has no {heading!r} section"
    section = text.split(f"\n{heading}\n", 1)[1]
    start = section.index("|")
    rows = []
    for line in section[start:].splitlines():
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows[2:]  # header and separator


def test_docs_list_exactly_the_exported_metrics() -> None:
    rows = doc_table("## Exported metrics")
    documented = [
        (row[0].strip("`"), row[1], tuple(label.strip("` ") for label in row[2].split(",")), row[3])
        for row in rows
    ]
    assert documented == [(m.name, m.type, m.labels, m.help) for m in names.METRICS]
    buckets = ", ".join(f"{bound:g}" for bound in names.DURATION_BUCKETS)
    text = " ".join((REPO / "docs/metrics.md").read_text(encoding="utf-8").split())
    assert f"buckets (seconds) are {buckets} and `+Inf`" in text


def test_docs_list_every_outcome_and_the_recorded_series() -> None:
    outcomes = [row[0].strip("`") for row in doc_table("## Outcomes")]
    assert outcomes == list(names.OUTCOMES)
    recorded = [row[0].strip("`") for row in doc_table("## Recorded series")]
    assert recorded == [prometheus.ERROR_RATIO, prometheus.OBJECTIVE]
    alerts = [row[0].strip("`") for row in doc_table("## Alerts")]
    assert alerts == list(prometheus.SUMMARIES)


def test_the_bundle_rules_folder_is_self_contained(built: BuiltBundle, tmp_path: Path) -> None:
    """rules.test.yml names rules.yml relative to itself: the folder moves as a whole."""
    folder = write_rules(built.files, tmp_path / "a")
    moved = shutil.move(folder / "prometheus", tmp_path / "elsewhere")
    assert yaml.safe_load((Path(moved) / "rules.test.yml").read_text())["rule_files"] == [
        "rules.yml"
    ]
    assert "SUCCESS" in promtool("test", "rules", "rules.test.yml", cwd=Path(moved)).stdout


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",))))
def test_yaml_string_holds_any_text(text: str) -> None:
    assert yaml.safe_load("value: " + yaml_string(text))["value"] == text
