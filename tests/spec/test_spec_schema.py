"""The committed JSON Schema matches the models, and agrees with pydantic on generated specs
(valid and invalid) wherever a schema can express the rule."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from support import REPO

from meshspec.commands.schema import command as schema_command
from meshspec.spec.models import MeshSpec
from meshspec.spec.schema import mesh_schema, schema_text

COMMITTED = REPO / "schemas" / "meshspec.schema.json"
VALIDATOR = jsonschema.Draft202012Validator(
    mesh_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)


def test_committed_schema_is_up_to_date() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == schema_text(), (
        "regenerate with: meshspec schema -o schemas/meshspec.schema.json"
    )


def test_schema_command_is_deterministic() -> None:
    first = CliRunner().invoke(schema_command, []).output
    second = CliRunner().invoke(schema_command, []).output
    assert first == second == schema_text()


def test_schema_command_prints_the_scenario_schema_on_request() -> None:
    from meshspec.sim.schema import schema_text as scenario_schema_text

    printed = CliRunner().invoke(schema_command, ["--scenario"]).output
    assert printed == scenario_schema_text()
    assert printed != schema_text()


def test_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(mesh_schema())


BASE: dict[str, Any] = {
    "apiVersion": "meshspec/v1",
    "mesh": {"name": "shop", "dns": {"zone": "shop.internal"}},
    "defaults": {"timeout": "2s", "retry": {"attempts": 3}},
    "services": {
        "web": {
            "port": 8080,
            "instances": [{"address": "10.0.0.1"}],
            "upstreams": {"api": {}},
        },
        "api": {"port": 8081, "instances": [{"address": "10.0.1.1", "weight": 2}]},
    },
}

DURATIONS = ["2s", "250ms", "1m30s", "0.5s", "0s", "0.0s", "2", 2, "abc", None, True, "1h"]
RATIOS = [0.2, 0, 1, "20%", "99.9%", "100%", "120%", 1.5, 20, "x", True, None, "20"]
INTS = [1, 3, 100, 0, 101, -1, "3", True, None]
NAMES = ["web", "a-b", "Web", "a_b", "-a", "a-", "a" * 63, "a" * 64, "1a"]
ADDRESSES = ["10.0.0.1", "::1", "fd00::1", "10.0.0.256", "host", "010.0.0.1", 5, "1.2.3"]
TEXT = ["web", "a b", "x=y", "café", "", "a/b:c@d+e", "quote'"]
META_KEYS = ["team", "Team_1", "1team", "a b", "a-b"]
OFFABLE = ["off", "disabled", {}, 5, None, {"bogus": 1}]
WINDOWS = [
    {"kind": "count", "size": 10},
    {"kind": "time", "size": "30s"},
    {"kind": "time", "size": "1500ms"},
    {"kind": "time", "size": 30},
    {"kind": "hours", "size": 1},
    {"size": 3},
    "off",
]
CONDITIONS = [
    ["5xx"],
    [503],
    ["503"],
    ["grpc:unavailable"],
    ["GRPC:Deadline-Exceeded"],
    ["grpc:nope"],
    ["oops"],
    [99],
    "5xx",
]
HEALTH = [
    {"http": "/h"},
    {"tcp": True},
    {"tcp": False},
    {"grpc": ""},
    {"grpc": "a.v1.H"},
    {"ttl": "30s"},
    {"http": "h"},
    "off",
    {"interval": "5s"},
]

# path in the document -> values to try there
SLOTS: dict[tuple[str | int, ...], list[Any]] = {
    ("defaults", "timeout"): DURATIONS,
    ("defaults", "retry", "attempts"): INTS,
    ("defaults", "retry", "per_try_timeout"): [*DURATIONS, "off"],
    ("defaults", "retry", "budget"): [
        *OFFABLE,
        {"ratio": "20%", "min_per_second": "10/s"},
        {"min_per_second": "10/h"},
    ],
    ("defaults", "retry", "on"): CONDITIONS,
    ("defaults", "retry", "backoff"): [None, {}, {"base": "1s"}, {"bas": "1s"}, "off"],
    ("defaults", "circuit_breaker", "open_for_max"): [*DURATIONS, "off"],
    ("defaults", "retry", "backoff", "jitter"): ["full", "decorrelated", "random", 1],
    ("defaults", "circuit_breaker"): OFFABLE,
    ("defaults", "circuit_breaker", "window"): WINDOWS,
    ("defaults", "circuit_breaker", "failure_rate"): RATIOS,
    ("defaults", "load_balancer", "strategy"): ["maglev", "ring_hash", "nope"],
    ("defaults", "load_balancer", "choices"): [2, 1, "2"],
    ("defaults", "concurrency_limit"): [10, 0, "off", "10"],
    ("defaults", "objective", "success_rate"): RATIOS,
    ("defaults", "health_check"): HEALTH,
    ("mesh", "name"): NAMES,
    ("mesh", "dns", "zone"): ["a.b", "a..b", "A.b", "a.b.", "a", 5],
    ("mesh", "dns", "ttl"): ["30s", "1m", "1500ms", "1.5s", 30, "0s"],
    ("services", "web", "port"): [1, 65535, 0, 65536, "80", 80.5],
    ("services", "web", "protocol"): ["http", "grpc", "tcp", "udp"],
    ("services", "web", "tags"): [[t] for t in TEXT],
    ("services", "web", "meta"): [{k: "v"} for k in META_KEYS] + [{"k": t} for t in TEXT],
    ("services", "web", "instances", 0, "address"): ADDRESSES,
    ("services", "web", "instances", 0, "weight"): INTS,
    ("services", "web", "instances", 0, "port"): [8080, 0, None, "x"],
    ("services", "web", "instances"): [[], "x"],
    ("services", "web", "upstreams", "api"): [None, {}, {"retry": "off"}, {"timeout": 1}, "off"],
    ("services", "web", "upstreams", "api", "retry"): OFFABLE,
    ("services", "api", "health_check"): HEALTH,
    ("services", "api", "defaults"): [None, {}, {"timeout": "1s"}, {"health_check": {"tcp": True}}],
    ("apiVersion",): ["meshspec/v1", "meshspec/v2", None],
    ("extra",): [1],
}


def _set(doc: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    node: Any = doc
    for part in path[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(part, {})
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return
        if not isinstance(node, dict | list):
            return
    last = path[-1]
    fits_list = isinstance(node, list) and isinstance(last, int) and last < len(node)
    if isinstance(node, dict) or fits_list:
        node[last] = value


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    chosen = draw(st.lists(st.sampled_from(sorted(SLOTS, key=str)), max_size=4, unique=True))
    for path in chosen:
        _set(doc, path, copy.deepcopy(draw(st.sampled_from(SLOTS[path]))))
    if draw(st.booleans()):
        name = draw(st.sampled_from(NAMES))
        doc["services"][name] = {"port": 9000, "instances": [{"address": "10.9.9.9"}]}
    return doc


def _pydantic_accepts(doc: dict[str, Any]) -> bool:
    try:
        MeshSpec.model_validate(doc)
    except ValidationError:
        return False
    return True


@given(documents())
def test_pydantic_and_json_schema_agree(doc: dict[str, Any]) -> None:
    assert _pydantic_accepts(doc) == VALIDATOR.is_valid(doc), [
        e.message for e in VALIDATOR.iter_errors(doc)
    ]


def test_the_generator_makes_both_valid_and_invalid_documents() -> None:
    assert _pydantic_accepts(BASE) and VALIDATOR.is_valid(BASE)
    broken = copy.deepcopy(BASE)
    _set(broken, ("defaults", "timeout"), "2")
    assert not _pydantic_accepts(broken) and not VALIDATOR.is_valid(broken)
