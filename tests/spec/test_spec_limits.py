"""The spec refuses, where they are written, values the runtime could not hold; its bounds are
the runtime's (meshspec_runtime.policy.limits), and docs/spec.md lists them."""

from __future__ import annotations

import pytest
from meshspec_runtime.policy.limits import (
    MAX_CHOICES,
    MAX_CONDITIONS,
    MAX_COUNT_WINDOW,
    MAX_MAGLEV_TABLE_SIZE,
    MAX_RING_SIZE,
    MAX_TIME_WINDOW_SECONDS,
    limits_table,
)
from spec_support import MINIMAL, WriteSpec
from support import REPO

from meshspec.spec import SpecError, load_spec

EDGE = "services.web.upstreams.api"


def refused(write_spec: WriteSpec, override: str) -> tuple[str, str, str]:
    """(code, path, message) of the one diagnostic ``--set override`` gets."""
    with pytest.raises(SpecError) as caught:
        load_spec(write_spec(MINIMAL), overrides=(override,))
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.line >= 1 and diagnostic.column >= 1
    return diagnostic.code, diagnostic.path, diagnostic.message


@pytest.mark.parametrize(
    ("override", "path", "expected"),
    [
        (f"{EDGE}.load_balancer.choices=2147483647", "load_balancer.choices", f"{MAX_CHOICES}"),
        (f"{EDGE}.load_balancer.ring_size=2147483647", "load_balancer.ring_size", "262144"),
        (
            f"{EDGE}.load_balancer.maglev_table_size=2147483647",
            "load_balancer.maglev_table_size",
            f"{MAX_MAGLEV_TABLE_SIZE}",
        ),
        (
            f"{EDGE}.circuit_breaker={{window: {{kind: count, size: 2147483647}}}}",
            "circuit_breaker.window.size",
            f"{MAX_COUNT_WINDOW}",
        ),
        (
            f"{EDGE}.circuit_breaker={{window: {{kind: time, size: 2147483647s}}}}",
            "circuit_breaker.window.size",
            f"{MAX_TIME_WINDOW_SECONDS}",
        ),
        (f"{EDGE}.retry.backoff.multiplier=1e6", "retry.backoff.multiplier", "1000"),
    ],
)
def test_values_beyond_the_runtime_limits_are_refused_where_written(
    write_spec: WriteSpec, override: str, path: str, expected: str
) -> None:
    code, where, message = refused(write_spec, override)
    assert code == "E0103"
    assert where == f"{EDGE}.{path}"
    assert f"at most {expected}" in message


def test_values_at_the_limits_are_accepted(write_spec: WriteSpec) -> None:
    spec = load_spec(
        write_spec(MINIMAL),
        overrides=(
            f"{EDGE}.load_balancer={{strategy: maglev, choices: {MAX_CHOICES},"
            f" ring_size: {MAX_RING_SIZE}, maglev_table_size: {MAX_MAGLEV_TABLE_SIZE}}}",
            f"{EDGE}.circuit_breaker={{window: {{kind: count, size: {MAX_COUNT_WINDOW}}}}}",
            f"{EDGE}.retry.on=[{', '.join(['5xx'] * MAX_CONDITIONS)}]",
        ),
    )
    assert spec.services["web"].upstreams["api"] is not None


def test_too_many_conditions_are_refused(write_spec: WriteSpec) -> None:
    conditions = ", ".join(["503"] * (MAX_CONDITIONS + 1))
    code, where, message = refused(write_spec, f"{EDGE}.retry.on=[{conditions}]")
    assert (code, where) == ("E0103", f"{EDGE}.retry.on")
    assert f"at most {MAX_CONDITIONS}" in message


def test_maglev_table_size_must_be_prime(write_spec: WriteSpec) -> None:
    code, where, message = refused(write_spec, f"{EDGE}.load_balancer.maglev_table_size=65536")
    assert (code, where) == ("E0114", f"{EDGE}.load_balancer.maglev_table_size")
    assert "prime" in message


def test_a_rate_beyond_the_limit_is_refused(write_spec: WriteSpec) -> None:
    code, where, message = refused(write_spec, f"{EDGE}.retry.budget={{min_per_second: 1e300/s}}")
    assert (code, where) == ("E0107", f"{EDGE}.retry.budget.min_per_second")
    assert "at most 1000000000/s" in message


def test_docs_list_the_limits_of_limits_py() -> None:
    assert limits_table() in (REPO / "docs" / "spec.md").read_text(encoding="utf-8"), (
        "docs/spec.md's limits table differs from meshspec_runtime.policy.limits.limits_table()"
    )
