"""Durations, ratios and rates: friendly text in, plain numbers out, clear errors."""

from __future__ import annotations

import pytest
from meshspec_runtime.policy.config import Jitter, Strategy
from pydantic_core import PydanticCustomError

from meshspec.spec.models import JitterName, StrategyName
from meshspec.spec.units import (
    format_seconds,
    parse_duration,
    parse_rate,
    parse_ratio,
    parse_whole_seconds,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("2s", 2.0), ("1m30s", 90.0), ("1h", 3600.0), ("1.5s", 1.5), ("700ms", 0.7)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("value", [2, 2.5, "2", "0s", "2 s", "2sec", "-1s", "", True, None])
def test_bad_durations(value: object) -> None:
    with pytest.raises(PydanticCustomError) as caught:
        parse_duration(value)
    assert caught.value.type == "duration"


def test_bare_number_gets_a_hint() -> None:
    with pytest.raises(PydanticCustomError, match=r"add a unit: '5s' or '5ms'"):
        parse_duration(5)


def test_whole_seconds() -> None:
    assert parse_whole_seconds("1m30s") == 90
    for bad in ("1500ms", "0s", "1.5s"):
        with pytest.raises(PydanticCustomError):
            parse_whole_seconds(bad)


@pytest.mark.parametrize(
    ("value", "fraction"), [(0.2, 0.2), (1, 1.0), (0, 0.0), ("20%", 0.2), ("99.9%", 0.999)]
)
def test_ratios(value: object, fraction: float) -> None:
    assert parse_ratio(value) == pytest.approx(fraction)


@pytest.mark.parametrize("value", [1.5, -0.1, "120%", "-5%", "abc%", "0.2", True, None])
def test_bad_ratios(value: object) -> None:
    with pytest.raises(PydanticCustomError):
        parse_ratio(value)


def test_ratio_above_one_suggests_a_percentage() -> None:
    with pytest.raises(PydanticCustomError, match=r"did you mean 20%\?"):
        parse_ratio(20)


@pytest.mark.parametrize(("value", "rate"), [("200/s", 200.0), ("60/m", 1.0), (10, 10.0)])
def test_rates(value: object, rate: float) -> None:
    assert parse_rate(value) == rate


@pytest.mark.parametrize("value", ["200", "200/h", "x/s", -1, True, float("inf"), float("nan")])
def test_bad_rates(value: object) -> None:
    with pytest.raises(PydanticCustomError):
        parse_rate(value)


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (0.25, 1.5, 2, 90, 120)] == [
        "250ms",
        "1.5s",
        "2s",
        "1m30s",
        "2m",
    ]


def test_spec_enums_mirror_the_runtime() -> None:
    assert set(JitterName.__args__) == {j.value for j in Jitter}  # type: ignore[attr-defined]
    assert set(StrategyName.__args__) == {s.value for s in Strategy}  # type: ignore[attr-defined]
