"""The one way the bundle writes JSON: sorted keys, two-space indentation, UTF-8, final newline.

orjson does it in C; the standard library's encoder falls back to pure Python as soon as it
indents, which costs seconds on a mesh of thousands of services.
"""

from __future__ import annotations

from typing import Any

import orjson

_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS


def dump_json(value: Any) -> bytes:
    return orjson.dumps(value, option=_OPTIONS) + b"\n"
