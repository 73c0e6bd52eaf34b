"""Durations in Go's ``time.Duration.String()`` syntax, which Consul parses everywhere.

One spelling for every duration the bundle writes: ``500ms``, ``10s``, ``1m0s``, ``1h30m0s``.
"""

from __future__ import annotations

import functools

_NS_PER = {"h": 3_600_000_000_000, "m": 60_000_000_000, "s": 1_000_000_000}
_SUB_SECOND = (("ms", 1_000_000), ("µs", 1_000), ("ns", 1))


@functools.lru_cache(maxsize=4096)  # a mesh repeats a handful of durations thousands of times
def go_duration(seconds: float) -> str:
    """``seconds`` as Go formats a ``time.Duration`` (rounded to whole nanoseconds)."""
    nanos = round(seconds * 1_000_000_000)
    if nanos < 0:
        raise ValueError(f"negative duration: {seconds}s")
    if nanos == 0:
        return "0s"
    if nanos < _NS_PER["s"]:
        for unit, size in _SUB_SECOND:
            if nanos >= size:
                return _decimal(nanos, size) + unit
    hours, rest = divmod(nanos, _NS_PER["h"])
    minutes, rest = divmod(rest, _NS_PER["m"])
    text = _decimal(rest, _NS_PER["s"]) + "s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return text


def _decimal(value: int, unit: int) -> str:
    """``value / unit`` without a trailing ``.0`` or trailing zeros, as Go prints it."""
    whole, fraction = divmod(value, unit)
    if not fraction:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{fraction:0{digits}d}".rstrip("0")
