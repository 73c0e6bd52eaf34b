"""The largest values the spec accepts still compile into artifacts their real consumers accept;
one step beyond, the spec refuses them (a located error, not a traceback or a rejected file)."""

from __future__ import annotations

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
    named_checkzone("shop.mesh.internal", out / "dns" / "shop.mesh.internal.zone")
    assert "SUCCESS" in promtool_check(out / "prometheus" / "rules.yml")
    files = sorted((out / "consul" / "services").glob("*.json"))
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
        ("defaults.circuit_breaker.window.size=99999999999999999999", "at most 2147483647"),
        ("defaults.load_balancer.choices=99999999999999999999", "at most 2147483647"),
    ],
)
def test_values_beyond_the_limits_are_refused(
    override: str, expected: str, tmp_path: Path
) -> None:
    out = tmp_path / "bundle"
    with pytest.raises(SpecError) as caught:
        compile_spec(SHOP, out, overrides=(override,))
    (diagnostic,) = caught.value.diagnostics
    assert expected in diagnostic.message
    assert diagnostic.path == override.partition("=")[0].replace(".0.", "[0].")
    assert not out.exists()
