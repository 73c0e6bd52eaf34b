"""Inheritance (mesh defaults -> service defaults -> edge), environments and --set."""

from __future__ import annotations

import pytest
from meshspec_runtime.policy.config import CountWindow, Jitter, TimeWindow
from spec_support import MINIMAL, SHOP, WriteSpec

from meshspec.spec import (
    SpecError,
    check_spec_file,
    edge_objective,
    edge_policy,
    health_check,
    load_spec,
)

LAYERED = """\
apiVersion: meshspec/v1
mesh: {name: m, dns: {zone: m.internal}}
defaults:
  timeout: 2s
  retry:
    attempts: 3
    backoff: {base: 50ms, max: 2s, jitter: equal}
    on: [connect-failure, 5xx]
  circuit_breaker: {window: {kind: count, size: 50}, minimum_calls: 10, failure_rate: 40%}
  health_check: {http: /healthz, interval: 10s, timeout: 2s}
services:
  a:
    port: 1000
    instances: [{address: 10.0.0.1}]
    defaults:
      timeout: 3s
      retry: {attempts: 4}
    upstreams:
      b: {retry: {attempts: 2}}
      c: {retry: {on: [503]}, circuit_breaker: {window: {kind: time, size: 30s}}}
      d: {retry: off, circuit_breaker: off, concurrency_limit: 7}
  b:
    port: 1001
    instances: [{address: 10.0.0.2}]
    health_check: {grpc: b.v1.Health, interval: 4s, timeout: 1s}
  c:
    port: 1002
    instances: [{address: 10.0.0.3}]
    health_check: {interval: 20s}
  d:
    port: 1003
    instances: [{address: 10.0.0.4}]
    health_check: off
"""


def test_edge_override_keeps_inherited_fields(write_spec: WriteSpec) -> None:
    spec = load_spec(write_spec(LAYERED))
    policy = edge_policy(spec, "a", "b")
    assert policy.retry.attempts == 2  # the edge
    assert policy.timeout == 3.0  # the caller's defaults
    assert policy.retry.backoff.base == 0.05  # the mesh defaults
    assert policy.retry.backoff.jitter is Jitter.EQUAL
    assert policy.retry.on == ("connect-failure", "5xx")


def test_lists_replace_and_windows_are_replaced_whole(write_spec: WriteSpec) -> None:
    spec = load_spec(write_spec(LAYERED))
    policy = edge_policy(spec, "a", "c")
    assert policy.retry.on == ("503",)
    assert policy.retry.attempts == 4
    breaker = policy.circuit_breaker
    assert breaker is not None
    assert breaker.window == TimeWindow(size=30)
    assert breaker.failure_rate == pytest.approx(0.4)


def test_off_switches_inherited_policies_off(write_spec: WriteSpec) -> None:
    spec = load_spec(write_spec(LAYERED))
    policy = edge_policy(spec, "a", "d")
    assert policy.retry.attempts == 1
    assert policy.circuit_breaker is None
    assert policy.concurrency_limit == 7
    assert edge_policy(spec, "a", "b").circuit_breaker is not None


def test_a_mapping_after_off_starts_from_the_runtime_defaults(write_spec: WriteSpec) -> None:
    text = LAYERED.replace(
        "      b: {retry: {attempts: 2}}", "      b: {circuit_breaker: {minimum_calls: 5}}"
    ).replace(
        "    defaults:\n      timeout: 3s",
        "    defaults:\n      circuit_breaker: off\n      timeout: 3s",
    )
    policy = edge_policy(load_spec(write_spec(text)), "a", "b")
    assert policy.circuit_breaker is not None
    assert policy.circuit_breaker.minimum_calls == 5
    assert policy.circuit_breaker.window == CountWindow(size=100)  # not the mesh's 50


def test_health_checks_merge_and_kinds_replace(write_spec: WriteSpec) -> None:
    spec = load_spec(write_spec(LAYERED))
    grpc = health_check(spec, "b")
    assert grpc is not None
    assert (grpc.kind, grpc.target, grpc.interval, grpc.timeout) == ("grpc", "b.v1.Health", 4, 1)
    inherited = health_check(spec, "c")
    assert inherited is not None
    assert (inherited.kind, inherited.target, inherited.interval) == ("http", "/healthz", 20.0)
    assert health_check(spec, "d") is None


def test_objective_defaults_to_three_nines(write_spec: WriteSpec) -> None:
    text = LAYERED.replace(
        "      d: {retry: off,", "      d: {objective: {success_rate: 99.5%}, retry: off,"
    )
    spec = load_spec(write_spec(text))
    assert edge_objective(spec, "a", "b") == pytest.approx(0.999)
    assert edge_objective(spec, "a", "d") == pytest.approx(0.995)


def test_environment_overlay() -> None:
    base = load_spec(SHOP)
    staging = load_spec(SHOP, env="staging")
    assert base.mesh.datacenter == "dc1"
    assert staging.mesh.datacenter == "stg1"
    assert staging.mesh.dns.zone == "shop.staging.internal"
    assert staging.mesh.dns.ttl == base.mesh.dns.ttl  # merged, not replaced
    assert [i.address for i in staging.services["payments"].instances] == ["10.1.3.10"]
    assert edge_policy(staging, "gateway", "catalog").circuit_breaker is None
    assert edge_policy(base, "gateway", "catalog").circuit_breaker is not None
    prod = load_spec(SHOP, env="prod")
    budget = edge_policy(prod, "web", "gateway").retry.budget
    assert budget is not None
    assert budget.ratio == pytest.approx(0.1)
    assert budget.window == 10.0  # the rest of the budget is inherited


def test_null_in_an_overlay_removes_the_key(write_spec: WriteSpec) -> None:
    text = MINIMAL + "environments:\n  lean:\n    services:\n      web: {upstreams: null}\n"
    spec = load_spec(write_spec(text), env="lean")
    assert spec.services["web"].upstreams == {}
    assert load_spec(write_spec(text)).services["web"].upstreams.keys() == {"api"}


def test_set_overrides_parse_yaml_values(write_spec: WriteSpec) -> None:
    path = write_spec(MINIMAL)
    spec = load_spec(
        path,
        overrides=[
            "services.web.upstreams.api.retry.attempts=2",
            "services.api.instances[0].weight=3",
            "services.api.tags=[blue, green]",
        ],
    )
    policy = edge_policy(spec, "web", "api")
    assert policy.retry.attempts == 2
    assert policy.retry.per_try_timeout == 0.5  # inherited beside the override
    assert spec.services["api"].instances[0].weight == 3
    assert spec.services["api"].tags == ["blue", "green"]


def test_error_after_merging_points_at_the_line_that_set_the_value(
    write_spec: WriteSpec,
) -> None:
    # per_try_timeout (500ms, line 9) is fine against the default 2s timeout, but the
    # edge lowers its timeout to 300ms on line 16: that line is reported.
    path = write_spec(MINIMAL.replace("api: {}", "api: {timeout: 300ms}"))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("E0207", 16, 22)
    assert diagnostic.path == "services.web.upstreams.api.timeout"
    # an inherited value is reported at its own line
    path = write_spec(MINIMAL.replace("per_try_timeout: 500ms", "per_try_timeout: 5s"))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.line, diagnostic.path) == (9, "defaults.retry.per_try_timeout")


def test_error_in_an_overlay_points_into_the_environment(write_spec: WriteSpec) -> None:
    text = MINIMAL + "environments:\n  tight:\n    defaults: {timeout: 100ms}\n"
    path = write_spec(text)
    load_spec(path)  # the base is fine
    with pytest.raises(SpecError) as caught:
        load_spec(path, env="tight")
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.path == "environments.tight.defaults.timeout"
    assert (diagnostic.line, diagnostic.column) == (23, 25)


def test_override_error_points_at_the_override(write_spec: WriteSpec) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(write_spec(MINIMAL), overrides=["defaults.timeout=100ms"])
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "E0207"
    assert diagnostic.file == "--set #1"
    assert diagnostic.column == len("defaults.timeout=") + 1


def test_unknown_environment_is_a_usage_error(write_spec: WriteSpec) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(write_spec(MINIMAL), env="prod")
    assert caught.value.is_usage_error
    assert caught.value.diagnostics[0].code == "E0300"


@pytest.mark.parametrize("environments", ["{1: {}}", "{1: {}, prod: {}}", "{null: {}, true: {}}"])
@pytest.mark.parametrize("env", ["prod", "staging"])
def test_environments_with_keys_that_are_not_text(
    environments: str, env: str, write_spec: WriteSpec
) -> None:
    # --env can only name a text key: the others are left to the models to report
    path = write_spec(MINIMAL + f"environments: {environments}\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path, env=env)
    codes = [d.code for d in caught.value.diagnostics]
    assert "E0101" in codes  # the key that is not text, located
    assert ("E0300" in codes) == (f"{env}:" not in environments)


def test_a_copied_spec_does_not_reuse_the_original_resolution(write_spec: WriteSpec) -> None:
    spec = load_spec(write_spec(MINIMAL))
    assert edge_policy(spec, "web", "api").timeout == 2.0
    defaults = spec.defaults.model_copy(update={"timeout": 1.0})
    copied = spec.model_copy(update={"defaults": defaults})
    assert edge_policy(copied, "web", "api").timeout == 1.0
    assert edge_policy(spec, "web", "api").timeout == 2.0


def test_every_environment_is_checked_in_one_run(write_spec: WriteSpec) -> None:
    text = MINIMAL + (
        "environments:\n  staging:\n    servics: {}\n  prod:\n    services: {api: {port: 0}}\n"
    )
    with pytest.raises(SpecError) as caught:
        check_spec_file(write_spec(text))
    assert [(d.code, d.path) for d in caught.value.diagnostics] == [
        ("E0100", "environments.staging.servics"),
        ("E0103", "environments.prod.services.api.port"),
    ]


def test_null_inside_a_new_overlay_subtree_means_not_set(write_spec: WriteSpec) -> None:
    text = MINIMAL + (
        "environments:\n  extra:\n    services:\n"
        "      batch: {port: 7000, instances: [{address: 10.0.2.1}], health_check: null}\n"
    )
    spec = load_spec(write_spec(text), env="extra")
    assert spec.services["batch"].health_check is None
    assert "health_check" not in spec.services["batch"].model_fields_set


def test_a_policy_set_directly_on_a_service_points_to_its_defaults(write_spec: WriteSpec) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(write_spec(MINIMAL), overrides=["services.web.retry.attempts=2"])
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "E0100"
    assert "did you mean 'defaults.retry'?" in diagnostic.message
    spec = load_spec(write_spec(MINIMAL), overrides=["services.web.defaults.retry.attempts=2"])
    assert edge_policy(spec, "web", "api").retry.attempts == 2


def test_a_cycle_an_environment_closes_is_reported_at_the_overlay_edge(
    write_spec: WriteSpec,
) -> None:
    # web -> api is in the base; only prod's api -> web makes a cycle: point at prod's edge
    text = MINIMAL + "environments:\n  prod:\n    services:\n      api: {upstreams: {web: {}}}\n"
    with pytest.raises(SpecError) as caught:
        check_spec_file(write_spec(text))
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "E0202"
    assert diagnostic.path == "environments.prod.services.api.upstreams.web"
    assert (diagnostic.line, diagnostic.column) == (24, 25)


def test_a_cycle_an_override_closes_is_reported_at_the_override(write_spec: WriteSpec) -> None:
    text = MINIMAL.replace(
        "      - {address: 10.0.1.1}\n",
        "      - {address: 10.0.1.1}\n  db:\n"
        "    port: 5432\n    instances: [{address: 10.0.2.1}]\n"
        "    upstreams: {web: {}}\n",
    )
    path = write_spec(text)
    with pytest.raises(SpecError) as caught:
        load_spec(path, overrides=["services.api.upstreams.db={}"])
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "E0202"
    assert diagnostic.file == "--set #1"
    assert "web -> api -> db -> web" in diagnostic.message


@pytest.mark.parametrize(
    ("override", "path", "column"),
    [
        ('services.api.tags=[ok, "a b"]', "services.api.tags[1]", 24),
        ("services.api.port=   99999", "services.api.port", 22),
        ("services.api.instances[0]={address: x}", "services.api.instances[0].address", 37),
        ("defaults.retry={atempts: 2}", "defaults.retry.atempts", 17),
        ("services.api.port=0", "services.api.port", 19),
    ],
)
def test_an_error_inside_an_override_value_points_at_its_element(
    override: str, path: str, column: int, write_spec: WriteSpec
) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(write_spec(MINIMAL), overrides=[override])
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.file, diagnostic.path) == ("--set #1", path)
    assert (diagnostic.line, diagnostic.column) == (1, column), diagnostic.format()


@pytest.mark.parametrize(
    "override", ["environments.prod.services.api.port=0", "environments=null", "environments.x={}"]
)
def test_an_override_of_an_environment_is_refused_not_ignored(
    override: str, write_spec: WriteSpec
) -> None:
    # --set applies after the overlay, so this changed nothing while saying nothing
    text = MINIMAL + "environments:\n  prod:\n    services: {api: {port: 9000}}\n"
    path = write_spec(text)
    for env in (None, "prod"):
        with pytest.raises(SpecError) as caught:
            load_spec(path, env=env, overrides=[override])
        (diagnostic,) = caught.value.diagnostics
        assert (diagnostic.file, diagnostic.code) == ("--set #1", "E0301")
        assert "cannot change an environment" in diagnostic.message


@pytest.mark.parametrize(
    ("overlay", "path", "where"),
    [
        ("services: null", "environments.prod.services", (23, 5)),
        ("services: {api: {port: null}}", "environments.prod.services.api.port", (23, 22)),
        ("mesh: {dns: {zone: null}}", "environments.prod.mesh.dns.zone", (23, 18)),
    ],
)
def test_a_required_field_an_overlay_removes_is_reported_at_its_null(
    overlay: str, path: str, where: tuple[int, int], write_spec: WriteSpec
) -> None:
    # it was reported at 1:1 (the top of the document), at a path without the environment
    text = MINIMAL + f"environments:\n  prod:\n    {overlay}\n"
    with pytest.raises(SpecError) as caught:
        load_spec(write_spec(text), env="prod")
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.code, diagnostic.path) == ("E0102", path)
    assert (diagnostic.line, diagnostic.column) == where, diagnostic.format()
