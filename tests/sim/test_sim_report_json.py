"""report.json is written by a faster path than ``json.dumps(indent=1, sort_keys=True)``, and
must be the very same text; what that path does not handle is left to ``json``."""

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


def _json(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, allow_nan=False) + "\n"


def test_a_run_summary_is_written_as_json_writes_it(tiny: Path) -> None:
    summary = run(tiny)
    assert summary["series"]["edges"]  # a real report: series, nested dicts, floats, None
    assert to_json(summary) == _json(summary)


@pytest.mark.parametrize(
    "value",
    [
        {"b": [1.5, True, False, None, 'é\n"x\\', [], {}, (1, 2), [[{}]]], "a": {"z": 1}},
        {"numbers": [-0.0, 1e300, 5e-324, 2**70, -3], "empty": {}, "list": []},
        {"unicode key é": "\u2603", "tab\t": "ctrl\x01"},
    ],
)
def test_plain_values_are_written_as_json_writes_them(value: dict[str, Any]) -> None:
    assert to_json(value) == _json(value)


@pytest.mark.parametrize(
    "value",
    [
        {2: "keys that are not strings", 1: "b"},
        {"a": {True: 1}},
        {"subclass": _Count(3), "dict subclass": _Labels(a=1)},
    ],
)
def test_what_the_fast_path_does_not_handle_is_left_to_json(value: dict[Any, Any]) -> None:
    assert to_json(value) == _json(value)


def test_keys_json_cannot_sort_are_refused_as_json_refuses_them() -> None:
    with pytest.raises(TypeError, match="not supported between"):
        to_json({"a": {1: "x", "b": "y"}})


def test_non_finite_floats_are_refused_as_json_refuses_them() -> None:
    with pytest.raises(ValueError, match="Out of range float"):
        to_json({"a": [math.inf]})
    with pytest.raises(ValueError, match="Out of range float"):
        to_json({"a": math.nan})


def test_rounding_keeps_six_significant_digits_and_drops_non_finite_floats() -> None:
    value = {"a": [1.23456789, 7, None, "x", (0.1 + 0.2,)], "b": {"c": math.inf, "d": -math.nan}}
    assert rounded(value) == {"a": [1.23457, 7, None, "x", [0.3]], "b": {"c": None, "d": None}}
    assert rounded(rounded(value)) == rounded(value)  # reports are rounded once or twice alike
