"""Scenario values with units, shared with the spec language (same parsing, same error codes).

Durations, ratios and rates are the spec's own types (:mod:`meshspec.spec.units`); a scenario
also needs points in time and lengths that may be zero (``at: 0s``), which :data:`Offset` adds.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from meshspec.spec.units import Duration, Rate, parse_duration
from meshspec.spec.units import Ratio as Percent

_ZERO = re.compile(r"^0+(\.0+)?(ms|h|m|s)?$")
OFFSET_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|h|m|s))+$"
"""Like the spec's duration pattern, zero included."""


def parse_offset(value: Any) -> float:
    """Like a spec duration, but zero (``0``, ``0s``) is allowed."""
    if (isinstance(value, int | float) and not isinstance(value, bool) and value == 0) or (
        isinstance(value, str) and _ZERO.match(value.strip())
    ):
        return 0.0
    return parse_duration(value)


Offset = Annotated[
    float,
    BeforeValidator(parse_offset),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": OFFSET_PATTERN,
            "description": "a time or length, possibly zero: 0s, 250ms, 1m30s",
        }
    ),
]
PositiveDuration = Duration

__all__ = ["Duration", "Offset", "Percent", "PositiveDuration", "Rate", "parse_offset"]
