"""Mutate examples/shop.yaml at random (values, types, keys, deletions, raw text): every
result is either valid or rejected with located diagnostics, never an exception."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import yaml
import yaml_rs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spec_support import SHOP

from meshspec.spec import SpecError, check_spec_file

SHOP_TEXT = SHOP.read_text(encoding="utf-8")
# loaded as YAML 1.2, as meshspec reads it (PyYAML would turn `on`/`off` into booleans)
SHOP_DATA: dict[str, Any] = yaml_rs.loads(SHOP_TEXT, parse_datetime=False)  # type: ignore[assignment]
# thousands of cases under the ci profile (1200 + 400), a quick run for developers
EXAMPLES = settings.default.max_examples * 4

Path_ = tuple[str | int, ...]


def _paths(node: Any, at: Path_ = ()) -> list[Path_]:
    found = [at]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*at, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*at, index)))
    return found


PATHS = _paths(SHOP_DATA)[1:]

SCALARS = st.one_of(
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=12),
    st.sampled_from(
        ["off", "2s", "250ms", "20%", "10/s", "0", "", "10.0.0.1", "::1", "-", "a" * 70, "web"]
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(max_size=8), children, max_size=3),
    ),
    max_leaves=6,
)


def _parent(doc: Any, path: Path_) -> Any:
    node = doc
    for part in path[:-1]:
        node = node[part]
    return node


@st.composite
def mutated_data(draw: st.DrawFn) -> dict[str, Any]:
    doc = copy.deepcopy(SHOP_DATA)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)[1:]
        path = draw(st.sampled_from(paths))
        parent = _parent(doc, path)
        operation = draw(st.sampled_from(["replace", "delete", "add-key", "rename"]))
        last = path[-1]
        if operation == "replace":
            parent[last] = draw(VALUES)
        elif operation == "delete":
            del parent[last]
        elif operation == "add-key" and isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(VALUES)
        elif operation == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["port", "retry", "web", "timeout", "x", "off"]))] = (
                parent.pop(last)
            )
    return doc


@st.composite
def mutated_text(draw: st.DrawFn) -> str:
    lines = SHOP_TEXT.splitlines(keepends=True)
    index = draw(st.integers(0, len(lines) - 1))
    operation = draw(st.sampled_from(["delete", "duplicate", "insert", "truncate"]))
    if operation == "delete":
        del lines[index]
    elif operation == "duplicate":
        lines.insert(index, lines[index])
    elif operation == "insert":
        lines.insert(index, draw(st.text(max_size=20)) + "\n")
    else:
        lines[index] = lines[index][: draw(st.integers(0, len(lines[index])))] + "\n"
    return "".join(lines)


def _check(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "spec.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            check_spec_file(path, display="spec.yaml")
        except SpecError as error:
            assert error.diagnostics
            for diagnostic in error.diagnostics:
                assert diagnostic.file == "spec.yaml"
                assert diagnostic.line >= 1 and diagnostic.column >= 1, diagnostic.format()
                assert diagnostic.code.startswith("E") and diagnostic.message


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_data())
def test_mutated_values_give_a_spec_or_located_errors(doc: dict[str, Any]) -> None:
    dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    _check(yaml.dump(doc, Dumper=dumper, sort_keys=False, allow_unicode=True))


@settings(max_examples=EXAMPLES // 3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_text())
def test_mutated_text_gives_a_spec_or_located_errors(text: str) -> None:
    _check(text)


def test_the_unmutated_example_round_trips(tmp_path: Path) -> None:
    dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.dump(SHOP_DATA, Dumper=dumper, sort_keys=False), encoding="utf-8")
    spec = check_spec_file(path)  # the mutations start from a valid document
    assert spec.edge_count() == 8
    assert SHOP_DATA["services"]["payments"]["upstreams"]["ledger"]["retry"] == "off"
