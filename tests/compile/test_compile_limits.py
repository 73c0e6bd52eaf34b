"""The largest values the spec accepts still compile into artifacts their real consumers accept;
one step beyond, the spec refuses them (a located error, not a traceback or a rejected file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from compile_zonecheck import named_checkzone
from support import REPO
from test_compile_consul_validate import consul_validate
from test_prom_rules import promtool_check

from meshspec.compile import compile_spec
from meshspec.spec import SpecError

SHOP = REPO / "examples" / "shop.yaml"
LONGEST = "2562047h47m16s"  # Go's longest time.Duration, in whole seconds

AT_THE_LIMITS = (
    f"defaults.timeout={LONGEST}",
    f"defaults.health_check.interval={LONGEST}",
    "defaults.health_check.timeout=2562047h",
    f"defaults.health_check.deregister_after={LONGEST}",
    f"defaults.circuit_breaker.open_for={LONGEST}",
    f"services.web.upstreams.gateway.timeout={LONGEST}",
    f"services.gateway.upstreams.checkout.timeout={LONGEST}",
    "mesh.dns.ttl=2147483647s",
    "services.web.instances.0.weight=65535",
    "services.web.instances.1.weight=1",
)


def test_values_at_the_limits_compile_into_accepted_artifacts(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    compile_spec(SHOP, out, overrides=AT_THE_LIMITS)
    named_checkzone("shop.mesh.internal", out / "current" / "dns" / "shop.mesh.internal.zone")
    assert "SUCCESS" in promtool_check(out / "current" / "prometheus" / "rules.yml")
    files = sorted((out / "current" / "consul" / "services").glob("*.json"))
    result = consul_validate([(f.name, f.read_bytes()) for f in files], tmp_path / "config")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("defaults.health_check.interval=2562047h47m17s", "to 2562047h47m16s"),
        ("defaults.timeout=99999999999999999999h", "to 2562047h47m16s"),
        ("defaults.timeout=0.0000001ms", "from one nanosecond"),
        ("mesh.dns.ttl=2147483648s", "at most 2147483647"),
        ("services.web.instances.0.weight=65536", "at most 65535"),
        ("services.web.instances.0.weight=99999999999999999999999", "at most 65535"),
        ("defaults.circuit_breaker.window.size=99999999999999999999", "at most 100000"),
        ("defaults.load_balancer.choices=99999999999999999999", "at most 100"),
    ],
)
def test_values_beyond_the_limits_are_refused(override: str, expected: str, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    with pytest.raises(SpecError) as caught:
        compile_spec(SHOP, out, overrides=(override,))
    (diagnostic,) = caught.value.diagnostics
    assert expected in diagnostic.message
    assert diagnostic.path == override.partition("=")[0].replace(".0.", "[0].")
    assert not out.exists()


SERVICE = "s" * 62  # `_<service>` is a label of the SRV name: 63 characters
INSTANCE = "i" * 63
ZONE = "z" * 62 + "." + "y" * 63  # the longest name, <id>.<service>.<zone>, is 253 characters


def _names_spec(service: str, instance: str, zone: str) -> str:
    return (
        "apiVersion: meshspec/v1\n"
        f"mesh: {{name: m, datacenter: dc1, dns: {{zone: {zone}, ttl: 30s}}}}\n"
        "services:\n"
        f"  {service}:\n"
        "    port: 80\n"
        f"    instances: [{{address: 'fd00::1', id: {instance}}}, {{address: 10.0.0.1, id: b}}]\n"
    )


def test_the_longest_names_compile_into_a_zone_named_checkzone_loads(tmp_path: Path) -> None:
    spec = tmp_path / "names.yaml"
    spec.write_text(_names_spec(SERVICE, INSTANCE, ZONE))
    out = tmp_path / "bundle"
    compile_spec(spec, out)
    (zonefile,) = (out / "current" / "dns").iterdir()
    named_checkzone(ZONE, zonefile)


@pytest.mark.parametrize(
    ("service", "instance", "zone", "where", "expected"),
    [
        (SERVICE + "s", "a", "z.example", (4, 3), "label '_" + SERVICE + "s', 64 characters"),
        (SERVICE, INSTANCE + "i", "z.example", (6, 42), "64 characters; expected at most 63"),
        (SERVICE, INSTANCE, "x." + ZONE, (2, 46), "255 characters; expected names of at most 253"),
        ("z" * 253, "a", "z.example", (4, 3), "expected a DNS label"),
    ],
)
def test_names_beyond_dns_limits_are_refused_where_they_are_written(
    service: str,
    instance: str,
    zone: str,
    where: tuple[int, int],
    expected: str,
    tmp_path: Path,
) -> None:
    spec = tmp_path / "names.yaml"
    spec.write_text(_names_spec(service, instance, zone))
    out = tmp_path / "bundle"
    with pytest.raises(SpecError) as caught:
        compile_spec(spec, out)
    first = caught.value.diagnostics[0]
    assert (first.line, first.column) == where, first.format()
    assert expected in first.message, first.format()
    assert not out.exists()


def test_a_default_instance_id_beyond_63_characters_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "names.yaml"
    spec.write_text(_names_spec(SERVICE, "a", "z.example").replace(", id: b}", "}"))
    out = tmp_path / "bundle"
    with pytest.raises(SpecError) as caught:
        compile_spec(spec, out)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "E0213"
    assert "default id '" + SERVICE + "-1'" in diagnostic.message
    assert (diagnostic.line, diagnostic.column) == (6, 46)  # the instance without an id


@pytest.mark.parametrize("serial", [2**32, 2**40, -1, True, 1.5, "7"])
def test_a_previous_serial_a_zone_cannot_hold_starts_the_serial_again(
    serial: object, tmp_path: Path
) -> None:
    previous = tmp_path / "previous"
    compile_spec(SHOP, previous)
    manifest = json.loads((previous / "current" / "manifest.json").read_text())
    manifest["dns_serial"] = serial
    (previous / "current" / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "bundle"
    result = compile_spec(SHOP, out, previous=previous)
    assert result.serial == 1
    named_checkzone("shop.mesh.internal", out / "current" / "dns" / "shop.mesh.internal.zone")


def test_an_ipv6_address_with_a_scope_is_refused(tmp_path: Path) -> None:
    # ipaddress accepts fe80::1%eth0, which no zone file (AAAA) or health-check URL can hold
    override = "services.web.instances.0.address=fe80::1%eth0"
    out = tmp_path / "bundle"
    with pytest.raises(SpecError) as caught:
        compile_spec(SHOP, out, overrides=(override,))
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "E0110"
    assert "without a scope" in diagnostic.message
    assert not out.exists()


def test_an_ipv6_only_service_with_one_instance_and_no_upstreams_compiles_cleanly(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bundle"
    compile_spec(
        SHOP,
        out,
        overrides=(
            "services.payments.instances=[{address: 'fe80::1'}]",
            "services.ledger.instances=[{address: '::ffff:10.0.0.1', weight: 65535}]",
        ),
    )
    named_checkzone("shop.mesh.internal", out / "current" / "dns" / "shop.mesh.internal.zone")
    files = sorted((out / "current" / "consul" / "services").glob("*.json"))
    result = consul_validate([(f.name, f.read_bytes()) for f in files], tmp_path / "config")
    assert result.returncode == 0, result.stdout + result.stderr


def _meta(pairs: int) -> str:
    return "{" + ", ".join(f"k{i}: v" for i in range(pairs)) + "}"


def test_the_most_meta_pairs_consul_takes_compile_into_accepted_service_files(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bundle"
    compile_spec(SHOP, out, overrides=(f"services.web.meta={_meta(62)}",))
    files = sorted((out / "current" / "consul" / "services").glob("*.json"))
    result = consul_validate([(f.name, f.read_bytes()) for f in files], tmp_path / "config")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("meta", "code", "path"),
    [
        (_meta(63), "E0103", "services.web.meta"),
        ("{team: a, consul-team: b}", "E0214", "services.web.meta.consul-team"),
        ("{meshspec_mesh: other}", "E0214", "services.web.meta.meshspec_mesh"),
    ],
)
def test_meta_consul_or_the_bundle_would_refuse_or_overwrite_is_refused(
    meta: str, code: str, path: str, tmp_path: Path
) -> None:
    out = tmp_path / "bundle"
    with pytest.raises(SpecError) as caught:
        compile_spec(SHOP, out, overrides=(f"services.web.meta={meta}",))
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.code, diagnostic.path) == (code, path)
    assert not out.exists()


@pytest.mark.parametrize(
    ("instances", "path", "found"),
    [
        # a default id (web-0) taken by an explicit one: Consul kept one registration of two
        ("[{address: 10.9.0.1}, {address: 10.9.0.2, id: web-0}]", "instances[1].id", "by default"),
        ("[{address: 10.9.0.1, id: web-1}, {address: 10.9.0.2}]", "instances[1]", "then by"),
        # ids differing in case only are one DNS name
        ("[{address: 10.9.0.1, id: a1}, {address: 10.9.0.2, id: A1}]", "instances[1].id", "'A1'"),
    ],
)
def test_instance_ids_are_unique_with_defaults_and_regardless_of_case(
    instances: str, path: str, found: str, tmp_path: Path
) -> None:
    out = tmp_path / "bundle"
    with pytest.raises(SpecError) as caught:
        compile_spec(SHOP, out, overrides=(f"services.web.instances={instances}",))
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.code, diagnostic.path) == ("E0210", f"services.web.{path}")
    assert found in diagnostic.message
    assert not out.exists()
