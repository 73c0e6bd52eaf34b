"""Every one-field change to a spec that alters a bundle file shows up in ``meshspec diff`` as
a readable line (issue 15: an objective change used to print nothing but "1 change(s)")."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import pytest
import yaml_rs
from support import REPO

from meshspec.compile import compile_spec_in_memory
from meshspec.compile.diff import MANIFEST, Change, diff
from meshspec.spec import SpecError

SHOP = REPO / "examples" / "shop.yaml"
CASES = 60
DURATION = re.compile(r"^(\d+)(ms|s|m)$")
PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")
ALTERNATIVES = {
    "strategy": ["random", "round_robin", "least_request", "maglev"],
    "jitter": ["none", "equal", "full"],
    "protocol": ["http", "grpc", "tcp"],
    "mode": ["rate", "consecutive"],
}


def _leaves(
    value: Any, path: tuple[str | int, ...] = ()
) -> list[tuple[tuple[str | int, ...], Any]]:
    if isinstance(value, dict):
        out: list[tuple[tuple[str | int, ...], Any]] = []
        if path and path[-1] in (
            "retry",
            "circuit_breaker",
            "outlier_detection",
            "adaptive_throttle",
        ):
            out.append((path, value))  # a whole policy: switch it off
        for key, item in value.items():
            out.extend(_leaves(item, (*path, key)))
        return out
    if isinstance(value, list) and value and not isinstance(value[0], dict | list):
        return [(path, value)]
    if isinstance(value, list):
        return [leaf for i, item in enumerate(value) for leaf in _leaves(item, (*path, i))]
    return [(path, value)]


def _mutate(path: tuple[str | int, ...], value: Any, rng: random.Random) -> Any:
    last = path[-1]
    if isinstance(value, dict):
        return "off"
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + rng.randint(1, 3)
    if isinstance(value, float):
        return round(value * rng.choice([0.5, 1.5]), 6)
    if isinstance(value, list):
        return value[:-1] if len(value) > 1 else [*value, "reset"]
    if isinstance(value, str):
        if isinstance(last, str) and last in ALTERNATIVES:
            return rng.choice([v for v in ALTERNATIVES[last] if v != value])
        if match := DURATION.match(value):
            return f"{int(match[1]) * rng.choice([2, 3])}{match[2]}"
        if match := PERCENT.match(value):
            return f"{float(match[1]) * rng.choice([0.5, 0.99]):.4g}%"
        if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", value):
            return value.rsplit(".", 1)[0] + f".{rng.randint(100, 200)}"
        if last == "id" or last == "team" or last in ("http", "zone"):
            return value + "x" if last != "http" else value + "/x"
    return None


def _key(path: tuple[str | int, ...]) -> str:
    return "".join(
        f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(path)
    )


def test_random_one_field_changes_each_show_up_as_a_line() -> None:
    document = yaml_rs.loads(SHOP.read_text(), parse_datetime=False)
    document.pop("environments")
    rng = random.Random(15)
    leaves = [(p, v) for p, v in _leaves(document) if p[0] != "apiVersion"]
    base = compile_spec_in_memory(SHOP).files
    checked = 0
    for path, value in rng.sample(leaves, len(leaves)):
        new = _mutate(path, value, rng)
        if new is None:
            continue
        override = f"{_key(path)}={json.dumps(new)}"
        try:
            files = compile_spec_in_memory(SHOP, overrides=[override]).files
        except SpecError:
            continue  # the change made the spec invalid: nothing to diff
        differing = sorted(
            name
            for name in base.keys() | files.keys()
            if name != MANIFEST and base.get(name) != files.get(name)
        )
        changes = diff(base, files)
        if not differing:
            assert changes == [], (override, changes)
            continue
        texts = [c.text() for c in changes]
        assert changes, (override, differing)
        assert all(_readable(c) for c in changes), (override, texts)
        checked += 1
        if checked == CASES:
            break
    assert checked == CASES


def _readable(change: Change) -> bool:
    """A line a reviewer can act on: not the version fallback, not a file's digest."""
    return change.subject not in ("bundle",) and not change.subject.startswith("file ")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "defaults.objective.success_rate=99.5%",
            "meshspec:objective:ratio web -> gateway: expr 0.999 -> 0.995",
        ),
        ("mesh.dns.ttl=60s", "mesh: dns.ttl 30s -> 1m"),
        ("defaults.timeout=2500ms", "catalog -> inventory: timeout 2s -> 2.5s"),
        ("defaults.retry.budget.ratio=30%", "catalog -> inventory: retry.budget.ratio 20% -> 30%"),
        (
            "services.catalog.upstreams.inventory.circuit_breaker=off",
            "catalog -> inventory: circuit_breaker on -> off",
        ),
        (
            "services.catalog.upstreams.inventory.adaptive_throttle={k: 3}",
            "catalog -> inventory: adaptive_throttle off -> on (k 3, window 2m)",
        ),
        (
            "services.search.port=9300",
            "search: port 9200 -> 9300",
        ),
    ],
)
def test_change_lines_read_as_a_person_writes_them(override: str, expected: str) -> None:
    base = compile_spec_in_memory(SHOP).files
    files = compile_spec_in_memory(SHOP, overrides=[override]).files
    texts = [c.text() for c in diff(base, files)]
    assert any(t.startswith(expected) for t in texts), texts


def test_a_consul_entry_is_named_once_and_a_switched_on_balancer_says_which() -> None:
    base = compile_spec_in_memory(SHOP).files
    override = "services.gateway.upstreams.checkout.load_balancer={strategy: round_robin}"
    files = compile_spec_in_memory(SHOP, overrides=[override]).files
    texts = [c.text() for c in diff(base, files)]
    assert "service-resolver checkout: LoadBalancer off -> on (Policy round_robin)" in texts
    removed = [
        c.text()
        for c in diff(
            base,
            compile_spec_in_memory(
                SHOP,
                overrides=[
                    "services.catalog.upstreams=null",
                    "services.checkout.upstreams.inventory=null",
                ],
            ).files,
        )
    ]
    assert "consul config entry removed: service-resolver inventory" in removed, removed
