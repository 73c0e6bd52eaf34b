"""The jinja2 environment that renders the bundle's text outputs from ``templates/``."""

from __future__ import annotations

import functools
import re

import jinja2

from meshspec.resources import templates

_NEEDS_ESCAPING = re.compile(r'["\\\x00-\x1f\x7f-\U0010ffff]')


def yaml_string(value: str) -> str:
    """A YAML double-quoted scalar holding exactly ``value``, whatever it holds: quotes and
    backslashes escaped, anything outside printable ASCII as a \\u or \\U escape."""
    if value.isascii() and value.isprintable():  # C-speed checks first: the common case
        if '"' not in value and "\\" not in value:
            return f'"{value}"'
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return '"' + _NEEDS_ESCAPING.sub(_escape, value) + '"'


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in '"\\':
        return "\\" + char
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def promql_string(value: str) -> str:
    """A PromQL double-quoted string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


@functools.cache
def environment() -> jinja2.Environment:
    folder = templates()
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: folder.joinpath(name).read_text("utf-8")),
        autoescape=False,  # zone files and YAML, not HTML; values are escaped by filters
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["yaml_string"] = yaml_string
    env.filters["promql_string"] = promql_string
    return env


def render(template: str, **context: object) -> bytes:
    return environment().get_template(template).render(**context).encode("utf-8")
