"""Overlays on the plain document: environments and ``--set`` overrides.

Merge rules (docs/spec.md has them with an example):

- a mapping merged onto a mapping merges key by key, recursively;
- anything else (a scalar, a list, ``off``) replaces what was there; lists are never
  concatenated;
- ``null`` in an overlay removes the key, so the value is inherited again (an environment
  can drop a whole service with ``services: {legacy: null}``).

Every merged value is recorded in a :class:`~meshspec.spec.document.Provenance`, so an error
in it points at the overlay line (or the ``--set`` argument) that wrote it.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Sequence
from typing import Any

import yaml_rs

from meshspec.spec.diagnostics import Diagnostic, SpecError
from meshspec.spec.document import Provenance, Source
from meshspec.spec.yamlio import PositionLookup


class OverridePosition(PositionLookup):
    """Positions inside one ``--set KEY=VALUE`` argument (line 1): a path below KEY is looked up
    in VALUE's own YAML, so an error in ``--set 'a.tags=[ok, "b c"]'`` points at ``"b c"``."""

    def __init__(self, key: Sequence[str | int], value: str, column: int) -> None:
        super().__init__(value)
        self._key_length = len(key)
        self._column = column
        """1-based column of VALUE's first character in the argument."""

    def locate(self, path: Sequence[str | int], *, key: bool = False) -> tuple[int, int]:
        line, column = super().locate(tuple(path)[self._key_length :], key=key)
        if line != 1:  # an empty value, or a position on a later line of a multi-line one
            return 1, self._column
        return 1, self._column + column - 1


def merge_into(
    base: dict[str, Any],
    overlay: dict[str, Any],
    provenance: Provenance,
    source: Source,
    at: tuple[str | int, ...] = (),
) -> None:
    """Merge ``overlay`` onto ``base`` in place; record where each merged value came from."""
    for key, value in overlay.items():
        here = (*at, key)
        if value is None:
            if base.pop(key, None) is not None:  # a required field it removes is missing here
                provenance.add(here, Source(source.file, source.lookup, source.prefix + here))
            continue
        current = base.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merge_into(current, value, provenance, source, here)
            continue
        base[key] = _without_nulls(value)
        provenance.add(here, Source(source.file, source.lookup, source.prefix + here))


def _without_nulls(value: Any) -> Any:
    """A copy of an overlay value; its null keys mean "not set", as anywhere in an overlay."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return copy.deepcopy(value)


def apply_environment(data: dict[str, Any], env: str, provenance: Provenance) -> dict[str, Any]:
    """A copy of ``data`` with ``environments.<env>`` merged on; SpecError E0300 if unknown."""
    environments = data.get("environments")
    # only text keys can be named by --env (the models report any other key)
    names = (
        sorted(k for k in environments if isinstance(k, str))
        if isinstance(environments, dict)
        else []
    )
    overlay = environments.get(env) if isinstance(environments, dict) else None
    if env not in names:
        close = difflib.get_close_matches(env, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        listing = f" (declared: {', '.join(names)})" if names else " (none declared)"
        raise SpecError(
            [
                Diagnostic(
                    provenance.file,
                    0,
                    0,
                    "E0300",
                    f"environments.{env}",
                    f"unknown environment {env!r}{hint}{listing}",
                )
            ]
        )
    merged = copy.deepcopy({k: v for k, v in data.items() if k != "environments"})
    if isinstance(overlay, dict):
        source = Source(provenance.file, provenance.lookup, ("environments", env))
        merge_into(merged, overlay, provenance, source)
    if "environments" in data:
        merged["environments"] = data["environments"]
    return merged


def parse_override(text: str) -> tuple[list[str | int], Any, int]:
    """``a.b[0].c=VALUE`` -> (path, YAML value, 1-based column of VALUE); ValueError if bad."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError("expected KEY=VALUE, e.g. services.payments.port=9091")
    path: list[str | int] = []
    for part in key.strip().replace("[", ".").replace("]", "").split("."):
        if not part:
            raise ValueError(f"empty part in the key {key!r}")
        path.append(int(part) if part.isdigit() else part)
    if path[0] == "environments":
        # overrides apply after the environment's overlay: this one would change nothing
        raise ValueError(
            "an override cannot change an environment (it applies after the overlay); set the "
            "value's own path, with --env to pick the environment"
        )
    try:
        value = yaml_rs.loads(raw, parse_datetime=False) if raw.strip() else None
    except yaml_rs.YAMLDecodeError as error:
        raise ValueError(f"the value is not YAML: {str(error).splitlines()[-1]}") from None
    return path, value, len(key) + 2


def apply_overrides(
    data: dict[str, Any], overrides: Sequence[str], provenance: Provenance
) -> dict[str, Any]:
    """A copy of ``data`` with each ``KEY=VALUE`` set; SpecError E0301 for a malformed one."""
    merged = copy.deepcopy(data)
    problems: list[Diagnostic] = []
    for number, text in enumerate(overrides, start=1):
        where = f"--set #{number}"
        try:
            path, value, column = parse_override(text)
            _set(merged, path, value)
        except ValueError as error:
            problems.append(Diagnostic(where, 1, 1, "E0301", "", f"{text!r}: {error}"))
            continue
        raw = text[column - 1 :]
        provenance.add(path, Source(where, OverridePosition(path, raw, column), tuple(path)))
    if problems:
        raise SpecError(problems)
    return merged


def _set(data: dict[str, Any], path: Sequence[str | int], value: Any) -> None:
    node: Any = data
    for index, part in enumerate(path[:-1]):
        if isinstance(node, dict):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            node = child
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            shown = ".".join(str(p) for p in path[: index + 1])
            raise ValueError(f"{shown} is not a mapping or a list index in range")
    last = path[-1]
    if isinstance(node, dict):
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    elif isinstance(node, list) and isinstance(last, int) and last < len(node):
        node[last] = value
    else:
        raise ValueError(f"cannot set {last!r} inside a {type(node).__name__}")
