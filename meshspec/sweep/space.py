"""The space a sweep explores: ``--vary PATH=V1,V2,...`` axes and their combinations.

A value list is split at top-level commas (``retry.on=[503, 5xx],[5xx]`` has two values) and
``A..B`` between two integers expands to every integer from A to B. Each value is YAML, exactly
as ``--set PATH=VALUE`` takes it.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

_RANGE = re.compile(r"^\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*$")
MAX_RANGE = 10_000
"""Values one ``A..B`` may expand to: more is a typo."""


class VaryError(ValueError):
    """A malformed ``--vary``; ``column`` is 1-based within the argument."""

    def __init__(self, message: str, column: int = 1) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True, slots=True)
class Value:
    text: str
    column: int
    """1-based column of the value in its ``--vary`` argument (for located errors)."""


@dataclass(frozen=True, slots=True)
class Axis:
    number: int
    """1-based position among the ``--vary`` options."""
    path: str
    values: tuple[Value, ...]
    label: str = ""
    """A short name that tells the axes apart (``retry.attempts``)."""

    @property
    def where(self) -> str:
        return f"--vary #{self.number}"


@dataclass(frozen=True, slots=True)
class Combination:
    """One point of the space: a value index per axis."""

    indexes: tuple[int, ...]
    overrides: tuple[str, ...]
    """``PATH=VALUE`` per axis, as ``--set`` takes them."""

    @property
    def key(self) -> str:
        """Stable across runs and machines: results are stored under it."""
        return json.dumps(list(self.overrides), separators=(",", ":"))


def parse_vary(number: int, text: str) -> Axis:
    """``PATH=V1,V2`` -> an Axis; VaryError says what is wrong and where."""
    path, sep, rest = text.partition("=")
    if not sep or not path.strip():
        raise VaryError("expected PATH=V1,V2,..., e.g. defaults.retry.attempts=1,2,3")
    if any(c in path for c in " \t"):
        raise VaryError(f"the path {path.strip()!r} contains a space", path.find(" ") + 1)
    start = len(path) + 2
    values: list[Value] = []
    for offset, raw in split_top_level(rest):
        column = start + offset + (len(raw) - len(raw.lstrip()))
        if not raw.strip():
            raise VaryError("an empty value (two commas in a row, or one at the end)", column)
        values.extend(Value(v, column) for v in _expand_range(raw.strip(), column))
    seen: set[str] = set()
    for item in values:
        if item.text in seen:
            raise VaryError(f"the value {item.text!r} is listed twice", item.column)
        seen.add(item.text)
    return Axis(number, path.strip(), tuple(values))


def _expand_range(value: str, column: int) -> list[str]:
    match = _RANGE.match(value)
    if match is None:
        return [value]
    low, high = int(match[1]), int(match[2])
    if high < low:
        raise VaryError(f"the range {value} is empty (its end is below its start)", column)
    if high - low + 1 > MAX_RANGE:
        raise VaryError(f"the range {value} has more than {MAX_RANGE} values", column)
    return [str(v) for v in range(low, high + 1)]


def split_top_level(text: str) -> Iterator[tuple[int, str]]:
    """(offset, part) for each comma-separated part outside brackets, braces and quotes."""
    depth, quote, start = 0, "", 0
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            yield start, text[start:index]
            start = index + 1
    yield start, text[start:]


def labelled(axes: Sequence[Axis]) -> list[Axis]:
    """The axes with the shortest path suffixes (two parts at least) that tell them apart."""
    parts = [a.path.split(".") for a in axes]
    out = []
    for axis, mine in zip(axes, parts, strict=True):
        for length in range(min(2, len(mine)), len(mine) + 1):
            suffix = mine[-length:]
            if all(other[-length:] != suffix for other in parts if other is not mine):
                break
        out.append(Axis(axis.number, axis.path, axis.values, ".".join(suffix)))
    return out


def grid(axes: Sequence[Axis]) -> list[Combination]:
    """Every combination, the last axis varying fastest."""
    ranges = [range(len(a.values)) for a in axes]
    return [combination(axes, indexes) for indexes in itertools.product(*ranges)]


def combination(axes: Sequence[Axis], indexes: Sequence[int]) -> Combination:
    overrides = tuple(f"{a.path}={a.values[i].text}" for a, i in zip(axes, indexes, strict=True))
    return Combination(tuple(indexes), overrides)


def grid_size(axes: Sequence[Axis]) -> int:
    size = 1
    for axis in axes:
        size *= len(axis.values)
    return size
