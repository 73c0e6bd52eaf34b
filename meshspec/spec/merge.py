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

from meshspec.spec.diagnostics import Diagnostic, SpecError, format_path
from meshspec.spec.document import Provenance, Source, _fields_at
from meshspec.spec.models import MeshSpec
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
    dangling: list[tuple[tuple[str | int, ...], list[str]]] | None = None,
) -> None:
    """Merge ``overlay`` onto ``base`` in place; record where each merged value came from.

    A ``null`` on a key that is neither there nor a field of the spec removes nothing (a typo,
    or a service or key that does not exist): it is appended to ``dangling`` (its path and
    the keys that are there) when given, for the caller to report.
    """
    for key, value in overlay.items():
        here = (*at, key)
        if value is None:
            if key not in base and dangling is not None and not _is_field(here):
                dangling.append((here, [str(k) for k in base]))
            if base.pop(key, None) is not None:  # a required field it removes is missing here
                provenance.add(here, Source(source.file, source.lookup, source.prefix + here))
            continue
        current = base.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merge_into(current, value, provenance, source, here, dangling)
            continue
        base[key] = _without_nulls(value, here, dangling)
        provenance.add(here, Source(source.file, source.lookup, source.prefix + here))


def _without_nulls(
    value: Any,
    at: tuple[str | int, ...] = (),
    dangling: list[tuple[tuple[str | int, ...], list[str]]] | None = None,
) -> Any:
    """A copy of an overlay value that replaces what was there: its null keys remove nothing
    (reported through ``dangling``, when given)."""
    if isinstance(value, dict):
        if dangling is not None:
            dangling.extend(
                ((*at, k), []) for k, v in value.items() if v is None and not _is_field((*at, k))
            )
        return {k: _without_nulls(v, (*at, k), dangling) for k, v in value.items() if v is not None}
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
        # at the environments key when there is one, else at the top of the file
        line, column = (
            provenance.lookup.locate(("environments",), key=True)
            if isinstance(environments, dict)
            else (1, 1)
        )
        raise SpecError(
            [
                Diagnostic(
                    provenance.file,
                    max(line, 1),
                    max(column, 1),
                    "E0300",
                    f"environments.{env}",
                    f"unknown environment {env!r}{hint}{listing}",
                )
            ]
        )
    merged = copy.deepcopy({k: v for k, v in data.items() if k != "environments"})
    if isinstance(overlay, dict):
        source = Source(provenance.file, provenance.lookup, ("environments", env))
        problems = _unknown_services(merged, overlay, provenance, source)
        dangling: list[tuple[tuple[str | int, ...], list[str]]] = []
        merge_into(merged, overlay, provenance, source, dangling=dangling)
        problems += [_dangling_null(path, keys, source) for path, keys in dangling]
        if problems:
            raise SpecError(problems)
    if "environments" in data:
        merged["environments"] = data["environments"]
    return merged


def _is_field(path: tuple[str | int, ...]) -> bool:
    """True when ``path`` names a field of a spec model: null on it means "not set" even
    where nothing was set (a service an overlay adds may say ``health_check: null``)."""
    return str(path[-1]) in (_fields_at(MeshSpec, path[:-1]) or ())


def _dangling_null(path: tuple[str | int, ...], present: list[str], source: Source) -> Diagnostic:
    """E0117: ``null`` in an overlay removes a key; on a key that is not there it removes
    nothing, which is almost always a typo (``retry: {atempts: null}``)."""
    name = str(path[-1])
    fields = _fields_at(MeshSpec, path[:-1]) or []
    close = difflib.get_close_matches(name, [*present, *fields], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listing = f" (there: {', '.join(sorted(present))})" if present and not close else ""
    inner = source.prefix + path
    line, column = source.lookup.locate(inner, key=True)
    return Diagnostic(
        source.file,
        line,
        column,
        "E0117",
        format_path(inner),
        f"null removes {name!r}, which is not set here{hint}{listing}",
    )


def _unknown_services(
    base: dict[str, Any], overlay: dict[str, Any], provenance: Provenance, source: Source
) -> list[Diagnostic]:
    """E0118: an overlay's service that is not in the base and is no whole service either
    (no port or no instances) is a misspelt name, not a new service."""
    services, changes = base.get("services"), overlay.get("services")
    if not isinstance(services, dict) or not isinstance(changes, dict):
        return []
    out: list[Diagnostic] = []
    for name, change in changes.items():
        if name in services or change is None:
            continue  # null on an unknown service is E0117's
        if isinstance(change, dict) and "port" in change and "instances" in change:
            continue  # a service the environment adds
        close = difflib.get_close_matches(str(name), [str(s) for s in services], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        inner = (*source.prefix, "services", name)
        line, column = source.lookup.locate(inner, key=True)
        out.append(
            Diagnostic(
                source.file,
                line,
                column,
                "E0118",
                format_path(inner),
                f"service {name!r} is not in the base spec{hint}; an environment may add a "
                "service only with its port and instances",
            )
        )
    return out


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
