"""A typo inside an "X or off" (or "mapping or null") field is reported at the field itself by
JSON Schema validators and editors, not as the whole mapping failing every alternative."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
from jsonschema.exceptions import best_match

from meshspec.spec.schema import mesh_schema

VALIDATOR = jsonschema.Draft202012Validator(mesh_schema())

BASE: dict[str, Any] = {
    "apiVersion": "meshspec/v1",
    "mesh": {"name": "shop", "dns": {"zone": "shop.internal"}},
    "services": {
        "web": {"port": 8080, "instances": [{"address": "10.0.0.1"}], "upstreams": {"api": {}}},
        "api": {"port": 8081, "instances": [{"address": "10.0.1.1"}]},
    },
}
DURATION_MISMATCH = "'2x' does not match"

# where the broken value goes -> (the value, the path the error must name, what it must say)
CASES: list[tuple[tuple[str, ...], Any, tuple[str, ...], str]] = [
    (("defaults", "retry"), {"atempts": 3}, ("defaults", "retry"), "'atempts' was unexpected"),
    (
        ("defaults", "retry"),
        {"attempts": 3, "per_try_timeout": "2x"},
        ("defaults", "retry", "per_try_timeout"),
        DURATION_MISMATCH,
    ),
    (
        ("defaults", "retry"),
        {"budget": {"ratoi": "20%"}},
        ("defaults", "retry", "budget"),
        "'ratoi' was unexpected",
    ),
    (
        ("defaults", "retry"),
        {"backoff": {"bas": "1s"}},
        ("defaults", "retry", "backoff"),
        "'bas' was unexpected",
    ),
    (
        ("defaults", "circuit_breaker"),
        {"slow_calls": {"ovr": "1s"}},
        ("defaults", "circuit_breaker", "slow_calls"),
        "'ovr' was unexpected",
    ),
    (
        ("defaults", "circuit_breaker"),
        {"open_for_max": "2x"},
        ("defaults", "circuit_breaker", "open_for_max"),
        DURATION_MISMATCH,
    ),
    (("defaults", "concurrency_limit"), 0, ("defaults", "concurrency_limit"), "minimum of 1"),
    (
        ("defaults", "health_check"),
        {"htp": "/h"},
        ("defaults", "health_check"),
        "'htp' was unexpected",
    ),
    (
        ("services", "web", "health_check"),
        {"tcp": True, "deregister_after": "2x"},
        ("services", "web", "health_check", "deregister_after"),
        DURATION_MISMATCH,
    ),
    (
        ("services", "web", "upstreams", "api"),
        {"retry": {"atempts": 3}},
        ("services", "web", "upstreams", "api", "retry"),
        "'atempts' was unexpected",
    ),
    (
        ("services", "web", "defaults"),
        {"outlier_detection": {"max_ejectd": "10%"}},
        ("services", "web", "defaults", "outlier_detection"),
        "'max_ejectd' was unexpected",
    ),
]


CASE_IDS = [".".join(at) for _, _, at, _ in CASES]


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    node = doc
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    return doc


@pytest.mark.parametrize(("where", "value", "at", "says"), CASES, ids=CASE_IDS)
def test_every_error_names_the_field_itself(
    where: tuple[str, ...], value: Any, at: tuple[str, ...], says: str
) -> None:
    errors = list(VALIDATOR.iter_errors(_with(where, value)))
    assert [(tuple(e.absolute_path), says in e.message) for e in errors] == [(at, True)], [
        (list(e.absolute_path), e.message) for e in errors
    ]


@pytest.mark.parametrize(("where", "value", "at", "says"), CASES, ids=CASE_IDS)
def test_best_match_names_the_field_itself(
    where: tuple[str, ...], value: Any, at: tuple[str, ...], says: str
) -> None:
    best = best_match(VALIDATOR.iter_errors(_with(where, value)))
    assert best is not None
    assert (tuple(best.absolute_path), says in best.message) == (at, True), best.message


@pytest.mark.parametrize("value", ["off", None, {}, {"attempts": 2}])
def test_off_null_and_mappings_stay_valid(value: Any) -> None:
    assert VALIDATOR.is_valid(_with(("defaults", "retry"), value))
    assert VALIDATOR.is_valid(_with(("services", "web", "upstreams", "api"), {"retry": value}))


@pytest.mark.parametrize("value", ["of", "disabled", 5, True, []])
def test_anything_else_is_refused_where_it_stands(value: Any) -> None:
    errors = list(VALIDATOR.iter_errors(_with(("defaults", "retry"), value)))
    assert [tuple(e.absolute_path) for e in errors] == [("defaults", "retry")]
