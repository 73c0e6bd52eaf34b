"""examples/shop.yaml compiled for real: every environment through every real consumer,
reproducibility, and exactly which files one policy change touches."""

from __future__ import annotations

from pathlib import Path

import pytest
from compile_support import serving_zone
from compile_zonecheck import assert_serves_exactly, named_checkzone
from meshspec_runtime.loader import load_bundle
from support import REPO
from test_prom_rules import promtool_check, promtool_test

from meshspec.compile import compile_spec
from meshspec.compile.emitters.dns import zone_path
from meshspec.compile.resolve import resolve_mesh
from meshspec.spec import load_spec

SHOP = REPO / "examples" / "shop.yaml"
ENVIRONMENTS = [None, "staging", "prod"]


def files_of(home: Path) -> dict[str, bytes]:
    """The files of the version the home's ``current`` names."""
    bundle = home / "current"
    return {
        p.relative_to(bundle).as_posix(): p.read_bytes() for p in bundle.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize("env", ENVIRONMENTS, ids=lambda env: env or "base")
def test_every_environment_passes_its_real_consumers(env: str | None, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    result = compile_spec(SHOP, out, env=env)
    mesh = resolve_mesh(load_spec(SHOP, env=env))
    zonefile = out / "current" / zone_path(mesh.zone)
    assert f"loaded serial {result.serial}" in named_checkzone(mesh.zone, zonefile)
    with serving_zone(tmp_path / "nsd", mesh.zone, zonefile) as resolver:
        served = assert_serves_exactly(resolver, mesh)
    assert served == sum(len(service.endpoints) for service in mesh.services)
    assert "SUCCESS" in promtool_check(out / "current" / "prometheus/rules.yml")
    assert "SUCCESS" in promtool_test(out / "current")
    loaded = load_bundle(out)
    assert loaded.version == result.version
    assert loaded.policy.service("checkout").upstreams["payments"].policy.retry.attempts == 2


def test_the_environment_changes_what_it_should(tmp_path: Path) -> None:
    staging = load_bundle(compile_spec_bundle(tmp_path / "staging", "staging"))
    prod = load_bundle(compile_spec_bundle(tmp_path / "prod", "prod"))
    assert len(staging.policy.service("checkout").upstreams["payments"].endpoints) == 1
    assert len(prod.policy.service("checkout").upstreams["payments"].endpoints) == 3
    assert staging.policy.service("web").upstreams["gateway"].policy.circuit_breaker is None
    assert (tmp_path / "staging/current/dns/shop.staging.internal.zone").is_file()
    assert staging.manifest.spec_digest != prod.manifest.spec_digest


def compile_spec_bundle(out: Path, env: str | None = None) -> Path:
    compile_spec(SHOP, out, env=env)
    return out


def test_compiling_twice_is_byte_identical(tmp_path: Path) -> None:
    first = files_of(compile_spec_bundle(tmp_path / "one", "prod"))
    second = files_of(compile_spec_bundle(tmp_path / "two", "prod"))
    assert first == second
    again = compile_spec(SHOP, tmp_path / "one", env="prod")
    assert again.unchanged
    assert files_of(tmp_path / "one") == first
    text = b"".join(first.values())
    assert str(tmp_path).encode() not in text and str(REPO).encode() not in text


def test_one_retry_setting_changes_version_serial_and_exactly_the_files_it_should(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bundle"
    before_result = compile_spec(SHOP, out)
    before = files_of(out)
    after_result = compile_spec(
        SHOP, out, overrides=["services.checkout.upstreams.payments.retry.attempts=3"]
    )
    after = files_of(out)
    assert after_result.version != before_result.version
    assert after_result.serial == before_result.serial + 1
    changed = {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}
    assert changed == {
        "manifest.json",  # version, serial, the index's digest
        "index/0000.json",  # the version, the digests of the files below (one bucket)
        "policy.json",  # the setting itself, and the version
        "dns/shop.mesh.internal.zone",  # the SOA serial only
        # every instance's Consul meta carries the bundle version
        "consul/services/0000.json",
        # every service's view carries the bundle version too
        "services/0000.json",
    }
    zone_lines = set(after["dns/shop.mesh.internal.zone"].splitlines()) ^ set(
        before["dns/shop.mesh.internal.zone"].splitlines()
    )
    assert zone_lines == {b"    1 ; serial", b"    2 ; serial"}
    # unchanged: the config entries (Consul cannot express retries) and the alert rules
    assert before["prometheus/rules.yml"] == after["prometheus/rules.yml"]
    assert before["prometheus/rules.test.yml"] == after["prometheus/rules.test.yml"]


def test_the_serial_continues_from_a_previous_bundle_elsewhere(tmp_path: Path) -> None:
    compile_spec(SHOP, tmp_path / "old")
    compile_spec(SHOP, tmp_path / "old", env="prod")  # serial 2
    fresh = compile_spec(SHOP, tmp_path / "new", previous=tmp_path / "old")
    assert fresh.serial == 3
    same = compile_spec(SHOP, tmp_path / "same", env="prod", previous=tmp_path / "old")
    assert same.serial == 2 and same.unchanged
