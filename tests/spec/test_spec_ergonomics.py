"""Validation ergonomics found by a new user (issue 15): overlay nulls and service names that
name nothing, a seconds-only field's hint, an unknown environment's location, and a tcp
service's resolver."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from support import REPO

from meshspec.compile import compile_spec_in_memory
from meshspec.spec import SpecError, load_spec
from meshspec.spec.loader import check_spec_file

BASE = """\
apiVersion: meshspec/v1
mesh: {name: m, dns: {zone: m.internal}}
defaults: {retry: {attempts: 2}}
services:
  payments:
    port: 80
    instances: [{address: 10.0.0.1}]
"""


def _problems(tmp_path: Path, text: str, env: str | None = None) -> list[str]:
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(SpecError) as caught:
        check_spec_file(path, env=env, display="spec.yaml")
    return [d.format() for d in caught.value.diagnostics]


def test_null_on_a_key_that_is_not_there_is_an_error_with_a_did_you_mean(
    tmp_path: Path,
) -> None:
    overlay = "environments:\n  qa:\n    defaults:\n      retry: {atempts: null}\n"
    assert _problems(tmp_path, BASE + overlay) == [
        "spec.yaml:11:15: error[E0117]: null removes 'atempts', which is not set here; did you "
        "mean 'attempts'? (at environments.qa.defaults.retry.atempts)"
    ]


def test_null_inside_a_replaced_value_is_an_error_too(tmp_path: Path) -> None:
    overlay = "environments:\n  qa:\n    defaults:\n      timeout: {5s: null}\n"
    problems = _problems(tmp_path, BASE + overlay)
    assert problems[0].startswith("spec.yaml:11:17: error[E0117]: null removes '5s'")


def test_null_on_a_service_that_does_not_exist_suggests_one(tmp_path: Path) -> None:
    overlay = "environments:\n  qa:\n    services:\n      paymnts: null\n"
    problems = _problems(tmp_path, BASE + overlay)
    assert problems == [
        "spec.yaml:11:7: error[E0117]: null removes 'paymnts', which is not set here; did you "
        "mean 'payments'? (at environments.qa.services.paymnts)"
    ]


def test_null_on_a_field_nothing_sets_still_means_not_set(tmp_path: Path) -> None:
    overlay = (
        "environments:\n  qa:\n    defaults:\n      timeout: 2s\n      circuit_breaker: null\n"
    )
    path = tmp_path / "spec.yaml"
    path.write_text(BASE + overlay)
    assert load_spec(path, env="qa").defaults.timeout == 2.0


def test_an_unknown_service_in_an_overlay_gets_a_did_you_mean(tmp_path: Path) -> None:
    overlay = "environments:\n  qa:\n    services:\n      paymnts: {port: 81}\n"
    problems = _problems(tmp_path, BASE + overlay)
    assert problems == [
        "spec.yaml:11:7: error[E0118]: service 'paymnts' is not in the base spec (did you "
        "mean 'payments'?); an environment may add a service only with its port and "
        "instances (at environments.qa.services.paymnts)"
    ]


def test_an_overlay_may_still_add_a_whole_service_and_remove_one(tmp_path: Path) -> None:
    overlay = (
        "environments:\n  qa:\n    services:\n"
        "      ledger: {port: 81, instances: [{address: 10.0.0.2}]}\n"
    )
    path = tmp_path / "spec.yaml"
    path.write_text(BASE + overlay)
    assert "ledger" in load_spec(path, env="qa").services


def test_a_seconds_only_field_suggests_seconds(tmp_path: Path) -> None:
    text = BASE.replace("dns: {zone: m.internal}", "dns: {zone: m.internal, ttl: 30}")
    problems = _problems(tmp_path, text)
    assert len(problems) == 1
    assert "(add a unit: '30s')" in problems[0]
    assert "ms" not in problems[0].split("found")[1]


def test_an_unknown_environment_points_at_the_environments_key(tmp_path: Path) -> None:
    overlay = "environments:\n  staging: {}\n"
    problems = _problems(tmp_path, BASE + overlay, env="qa")
    assert problems == [
        "spec.yaml:8:1: error[E0300]: unknown environment 'qa' (declared: staging) "
        "(at environments.qa)"
    ]
    assert _problems(tmp_path, BASE, env="qa")[0].startswith("spec.yaml:1:1: error[E0300]")


def test_a_tcp_service_resolver_has_no_http_request_timeout() -> None:
    files = compile_spec_in_memory(REPO / "examples" / "shop.yaml").files
    resolvers = {
        entry["Name"]: entry
        for path, content in files.items()
        if path.startswith("consul/config-entries/")
        for entry in json.loads(content)["entries"]
        if entry["Kind"] == "service-resolver"
    }
    inventory = resolvers["inventory"]
    assert "RequestTimeout" not in inventory
    assert inventory["LoadBalancer"]["Policy"] == "least_request"
    search = resolvers["search"]
    assert search["RequestTimeout"] == "800ms"  # http keeps it
