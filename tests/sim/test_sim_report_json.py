"""report.json's text: every value of a run summary as it was, keys sorted, deterministic."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from simrun import run

from meshspec.sim.metrics import rounded
from meshspec.sim.report import to_json


class _Count(int):
    pass


class _Labels(dict[str, int]):
    pass


def test_a_run_summary_reads_back_as_the_same_values(tiny: Path) -> None:
    summary = run(tiny)
    assert summary["series"]["edges"]  # a real report: series, nested dicts, floats, None
    text = to_json(summary)
    assert json.loads(text) == summary
    assert text.endswith("}\n") and text.startswith('{\n  "')  # two-space indentation
    assert text == to_json(json.loads(text))  # the same values, the same bytes


@pytest.mark.parametrize(
    "value",
    [
        {"b": [1.5, True, False, None, 'é\n"x\\', [], {}, [[{}]]], "a": {"z": 1}},
        {"numbers": [-0.0, 1e300, 5e-324, 2**62, -3, 0.1 + 0.2], "empty": {}, "list": []},
        {"unicode key é": "\u2603", "tab\t": "ctrl\x01"},
        {"subclass": _Count(3), "dict subclass": _Labels(a=1)},
    ],
)
def test_plain_values_read_back_exactly(value: dict[str, Any]) -> None:
    assert json.loads(to_json(value)) == value


def test_keys_are_sorted_at_every_depth() -> None:
    text = to_json({"b": {"y": 1, "x": 2}, "a": [{"d": 1, "c": 2}]})
    keys = [line.split('"')[1] for line in text.splitlines() if '":' in line]
    assert keys == ["a", "c", "d", "b", "x", "y"]


def test_tuples_are_written_as_lists() -> None:
    assert json.loads(to_json({"pair": (1, 2)})) == {"pair": [1, 2]}


def test_keys_that_are_not_strings_are_refused() -> None:
    with pytest.raises(TypeError, match="str"):
        to_json({"a": {1: "x", "b": "y"}})


def test_non_finite_floats_are_written_as_rounding_makes_them() -> None:
    value = {"a": [math.inf, 1.0], "b": -math.nan}
    assert to_json(value) == to_json(rounded(value))
    assert json.loads(to_json(value)) == {"a": [None, 1.0], "b": None}


def test_rounding_keeps_six_significant_digits_and_drops_non_finite_floats() -> None:
    value = {"a": [1.23456789, 7, None, "x", (0.1 + 0.2,)], "b": {"c": math.inf, "d": -math.nan}}
    assert rounded(value) == {"a": [1.23457, 7, None, "x", [0.3]], "b": {"c": None, "d": None}}
    assert rounded(rounded(value)) == rounded(value)  # reports are rounded once or twice alike
