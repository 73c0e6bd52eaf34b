"""The jinja2 environment that renders the bundle's text outputs from ``templates/``."""

from __future__ import annotations

import functools
import json

import jinja2

from meshspec.resources import templates


def yaml_string(value: str) -> str:
    """A YAML double-quoted scalar (a JSON string is one), whatever ``value`` holds."""
    return json.dumps(value, ensure_ascii=False)


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
