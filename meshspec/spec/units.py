"""Values with explicit units: durations (``250ms``, ``1m30s``), ratios (``0.2``, ``20%``) and
rates (``200/s``).

Each is an ``Annotated`` type for pydantic that parses the friendly text into a plain number
(seconds, a fraction, events per second), raises a ``PydanticCustomError`` whose type names the
unit (the diagnostics layer maps it to a stable code), and publishes a JSON Schema that
editors can check.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Annotated, Any

from meshspec_runtime.policy.limits import (
    MAX_DURATION_SECONDS,
    MAX_DURATION_TEXT,
    MAX_RATE_PER_SECOND,
)
from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|h|m|s))+")
# seconds = number * multiplier / divisor (dividing keeps 700ms at exactly 0.7)
_UNITS = {"ms": (1, 1000), "s": (1, 1), "m": (60, 1), "h": (3600, 1)}
# The lookahead (JSON Schema regexes are ECMA-262) keeps 0s out, as the parser does.
DURATION_PATTERN = r"^(?=[0-9.hms]*[1-9])([0-9]+(\.[0-9]+)?(ms|h|m|s))+$"
WHOLE_SECONDS_PATTERN = r"^(?=[0-9hms]*[1-9])([0-9]+(h|m|s))+$"
_WHOLE_SECONDS = re.compile(r"(?:\d+(?:h|m|s))+")
PERCENT_PATTERN = r"^(100(\.0+)?|[0-9]{1,2}(\.[0-9]+)?)%$"
RATE_PATTERN = r"^[0-9]+(\.[0-9]+)?/(s|m)$"


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


@functools.lru_cache(maxsize=4096)
def _duration_text(text: str) -> float | None:
    if not _DURATION.fullmatch(text):
        return None
    return sum(
        float(number) * _UNITS[unit][0] / _UNITS[unit][1]
        for number, unit in _DURATION_PART.findall(text)
    )


def parse_duration(value: Any) -> float:
    """``"1m30s"`` -> ``90.0``; bare numbers are refused with a hint."""
    seconds = _duration_text(value.strip()) if isinstance(value, str) else None
    if seconds is not None:
        if seconds > 0 and math.isfinite(seconds):
            # the bundle writes whole nanoseconds: a shorter duration would be written as 0s
            if round(seconds * 1e9) >= 1 and seconds <= MAX_DURATION_SECONDS:
                return seconds
            raise PydanticCustomError(
                "duration",
                "expected a duration from one nanosecond (0.000001ms) to {most}, found {found}",
                {"most": MAX_DURATION_TEXT, "found": repr(value)},
            )
        raise PydanticCustomError(
            "duration", "expected a duration above zero, found {found}", {"found": repr(value)}
        )
    hint = ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        hint = f" (add a unit: '{value}s' or '{value}ms')"
    raise PydanticCustomError(
        "duration",
        "expected a duration with a unit such as 250ms, 2s or 1m30s, found {found}{hint}",
        {"found": _shown(value), "hint": hint},
    )


def parse_whole_seconds(value: Any) -> int:
    """``"1m30s"`` -> ``90``: whole numbers of hours, minutes and seconds only."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        # only seconds are accepted here: never suggest milliseconds
        finite = math.isfinite(value) and value >= 1
        whole = int(value) if finite and value == int(value) else None
        hint = f" (add a unit: '{whole}s')" if whole is not None else ""
        raise PydanticCustomError(
            "duration",
            "expected whole seconds with a unit such as 30s or 1m, found {found}{hint}",
            {"found": _shown(value), "hint": hint},
        )
    seconds = parse_duration(value)
    if not _WHOLE_SECONDS.fullmatch(str(value).strip()):
        raise PydanticCustomError(
            "duration",
            "expected a whole number of seconds (at least 1s), found {found}",
            {"found": _shown(value)},
        )
    return int(seconds)


def parse_ratio(value: Any) -> float:
    """``0.2`` or ``"20%"`` -> ``0.2``; must lie within 0-100%."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if 0 <= value <= 1:
            return float(value)
        hint = f" (did you mean {value}%?)" if 1 < value <= 100 else ""
        raise PydanticCustomError(
            "ratio",
            "expected a ratio between 0 and 1 or a percentage such as 20%, found {found}{hint}",
            {"found": _shown(value), "hint": hint},
        )
    if isinstance(value, str) and value.strip().endswith("%"):
        number = value.strip()[:-1].strip()
        try:
            percent = float(number)
        except ValueError:
            percent = math.nan
        if 0 <= percent <= 100:
            return percent / 100
        raise PydanticCustomError(
            "ratio", "expected a percentage within 0-100%, found {found}", {"found": repr(value)}
        )
    raise PydanticCustomError(
        "ratio",
        "expected a ratio between 0 and 1 or a percentage such as 20%, found {found}",
        {"found": _shown(value)},
    )


def parse_rate(value: Any) -> float:
    """``"200/s"`` -> ``200.0``, ``"60/m"`` -> ``1.0``; a bare number is per second.

    At most ``MAX_RATE_PER_SECOND`` (meshspec_runtime.policy.limits)."""
    per_second = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        per_second = float(value)
    elif isinstance(value, str):
        number, _, unit = value.strip().partition("/")
        try:
            count = float(number)
        except ValueError:
            count = math.nan
        if unit in ("s", "m"):
            per_second = count if unit == "s" else count / 60
    if 0 <= per_second <= MAX_RATE_PER_SECOND:
        return per_second
    if per_second > MAX_RATE_PER_SECOND:
        raise PydanticCustomError(
            "rate",
            "expected a rate of at most {most}/s, found {found}",
            {"most": f"{MAX_RATE_PER_SECOND:.0f}", "found": _shown(value)},
        )
    raise PydanticCustomError(
        "rate",
        "expected a rate such as 200/s (or a number per second), found {found}",
        {"found": _shown(value)},
    )


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {"type": "string", "pattern": DURATION_PATTERN, "description": "e.g. 250ms, 2s, 1m30s"}
    ),
]
"""A positive duration, in seconds once parsed."""

WholeSeconds = Annotated[
    int,
    BeforeValidator(parse_whole_seconds),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": WHOLE_SECONDS_PATTERN,
            "description": "whole seconds, e.g. 30s",
        }
    ),
]

Ratio = Annotated[
    float,
    BeforeValidator(parse_ratio),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 1},
                {"type": "string", "pattern": PERCENT_PATTERN},
            ],
            "description": "a fraction (0.2) or a percentage (20%)",
        }
    ),
]
"""A fraction in [0, 1] once parsed."""

Rate = Annotated[
    float,
    BeforeValidator(parse_rate),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": MAX_RATE_PER_SECOND},
                {"type": "string", "pattern": RATE_PATTERN},
            ],
            "description": "events per second: 200/s, 600/m, or a number",
        }
    ),
]
"""Events per second once parsed."""


def format_seconds(seconds: float) -> str:
    """``1.5`` -> ``1.5s``, ``0.25`` -> ``250ms``, ``90`` -> ``1m30s`` (for messages)."""
    if seconds < 1:
        return f"{round(seconds * 1000, 3):g}ms"
    if seconds < 60 or seconds != int(seconds):
        return f"{seconds:g}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest}s" if rest else f"{minutes}m"
