"""Validate a YAML document against a pydantic model and report located diagnostics.

This is the reusable part of the spec language: the scenario language validates its files
the same way::

    from meshspec.spec.document import validate_document
    scenario = validate_document(Path("scenarios/x.yaml"), ScenarioModel)  # or SpecError

Each pydantic error becomes a :class:`~meshspec.spec.diagnostics.Diagnostic` with the
position of the offending node, a stable code, the path, and an "expected ..., found ..."
message. Values that were merged in from elsewhere (an environment overlay, a ``--set``
override) are located where they were written, through :class:`Provenance`.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from meshspec.spec.diagnostics import Diagnostic, SpecError, format_path
from meshspec.spec.yamlio import PositionLookup, load_yaml_document

ModelT = TypeVar("ModelT", bound=BaseModel)

DocPath = tuple[str | int, ...]
"""A path inside a document: mapping keys and list indexes."""


@dataclass(frozen=True, slots=True)
class Source:
    """Where a subtree of the validated data was written."""

    file: str
    lookup: PositionLookup
    prefix: DocPath
    """The subtree's path inside that file."""


class Provenance:
    """Maps paths of the (merged) data being validated to where each value was written."""

    def __init__(self, file: str, lookup: PositionLookup) -> None:
        self.file = file
        self.lookup = lookup
        self._sources: dict[DocPath, Source] = {}

    def add(self, path: Sequence[str | int], source: Source) -> None:
        """Values under ``path`` come from ``source`` (replacing what was recorded below)."""
        prefix = tuple(path)
        for recorded in [p for p in self._sources if p[: len(prefix)] == prefix]:
            del self._sources[recorded]
        self._sources[prefix] = source

    def source_of(self, path: Sequence[str | int]) -> tuple[Source, DocPath]:
        """The source of ``path`` and the path inside it."""
        parts = tuple(path)
        if self._sources:
            for cut in range(len(parts), -1, -1):
                source = self._sources.get(parts[:cut])
                if source is not None:
                    return source, source.prefix + parts[cut:]
        return Source(self.file, self.lookup, ()), parts

    def is_overlaid(self, path: Sequence[str | int]) -> bool:
        """True when ``path`` was written by an overlay or override, not the base document."""
        source, _ = self.source_of(path)
        return source.lookup is not self.lookup or bool(source.prefix)

    def diagnostic(
        self,
        path: Sequence[str | int],
        code: str,
        message: str,
        *,
        key: bool = False,
        severity: typing.Literal["error", "warning"] = "error",
    ) -> Diagnostic:
        source, inner = self.source_of(path)
        line, column = source.lookup.locate(inner, key=key)
        return Diagnostic(source.file, line, column, code, format_path(inner), message, severity)


# --- pydantic errors -> diagnostics ---------------------------------------------------------

# Pattern -> (code, what it means), for string_pattern_mismatch; filled by the spec models'
# owners through register_pattern so the messages say what a name must look like.
_PATTERNS: dict[str, tuple[str, str]] = {}
# Custom error types raised by our validators -> code.
_CUSTOM_CODES: dict[str, str] = {
    "duration": "E0105",
    "ratio": "E0106",
    "rate": "E0107",
    "address": "E0110",
    "condition": "E0111",
    "health_check_kind": "E0116",
    "window": "E0104",
    "prime": "E0114",
}
_TYPE_NAMES = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "none_required": "null",
}
_RANGE = {
    "greater_than_equal": ("ge", "at least {}"),
    "greater_than": ("gt", "above {}"),
    "less_than_equal": ("le", "at most {}"),
    "less_than": ("lt", "below {}"),
}


def register_pattern(pattern: str, code: str, meaning: str) -> None:
    """Say what a string pattern means, for messages like "expected a DNS label ..."."""
    _PATTERNS[pattern] = (code, meaning)


def found(value: Any) -> str:
    """A short rendering of an input value for "found ..." in messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return repr(text)
    if isinstance(value, int | float):
        return str(value)
    return type(value).__name__


def _is_tag(part: str | int) -> bool:
    return isinstance(part, str) and part.startswith("<") and part.endswith(">")


def _clean_loc(loc: Sequence[str | int]) -> tuple[DocPath, bool, bool]:
    """(path, points at a key, the value also accepts ``off``)."""
    parts = list(loc)
    is_key = bool(parts) and parts[-1] == "[key]"
    if is_key:
        parts.pop()
    accepts_off = bool(parts) and parts[-1] == "<value>"
    cleaned = tuple(
        part
        for i, part in enumerate(parts)
        if not (_is_tag(part) and not (is_key and i == len(parts) - 1))
    )
    return cleaned, is_key, accepts_off


def _fields_at(model: type[BaseModel], path: DocPath) -> list[str] | None:
    """Field names (aliases) of the model found at ``path`` below ``model``, if any."""
    current: Any = model
    for part in path:
        current = _step(current, part)
        if current is None:
            return None
    models = _models_in(current)
    if not models:
        return None
    return sorted({field.alias or name for m in models for name, field in m.model_fields.items()})


def _models_in(tp: Any) -> list[type[BaseModel]]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(tp)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [m for arg in typing.get_args(tp) for m in _models_in(arg)]
    return []


def _tagged_member(tp: Any, part: str | int) -> type[BaseModel] | None:
    """The member of a union discriminated by a field (``Field(discriminator="fault")``)
    whose tag is ``part``: pydantic puts the tag in an error's location (``faults.0.crash``)."""
    if typing.get_origin(tp) is not typing.Annotated or not isinstance(part, str):
        return None
    inner, *metadata = typing.get_args(tp)
    names = [m.discriminator for m in metadata if isinstance(getattr(m, "discriminator", 0), str)]
    for model in _models_in(inner) if names else []:
        field = model.model_fields.get(names[0])
        if field is not None and part in typing.get_args(field.annotation):
            return model
    return None


def _without_union_tags(model: type[BaseModel], path: DocPath) -> DocPath:
    """``path`` as it is in the document: without the tags of discriminated unions."""
    current: Any = model
    kept: list[str | int] = []
    for part in path:
        member = _tagged_member(current, part)
        if member is None:
            kept.append(part)
        current = member or (_step(current, part) if current is not None else None)
    return tuple(kept)


def _step(tp: Any, part: str | int) -> Any:
    member = _tagged_member(tp, part)
    if member is not None:
        return member
    models = _models_in(tp)
    for model in models:
        for name, field in model.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _step(typing.get_args(tp)[0], part)
    if origin is typing.Union or origin is types.UnionType:
        for arg in typing.get_args(tp):
            stepped = _step(arg, part)
            if stepped is not None:
                return stepped
        return None
    if origin is dict and isinstance(part, str):
        return typing.get_args(tp)[1]
    if origin in (list, tuple) and isinstance(part, int):
        return typing.get_args(tp)[0]  # list[X] or tuple[X, ...]
    return None


def _describe(error: ErrorDetails, model: type[BaseModel]) -> tuple[str, str]:
    """(code, message) for one pydantic error."""
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    value = error.get("input")
    tagged, _, _ = _clean_loc(error["loc"])
    path = _without_union_tags(model, tagged)
    if kind == "extra_forbidden":
        name = str(path[-1]) if path else "?"
        allowed = _fields_at(model, tagged[:-1]) or []
        close = difflib.get_close_matches(name, allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        if "defaults" in allowed and name in (_fields_at(model, (*tagged[:-1], "defaults")) or []):
            # A policy set directly on a service: the defaults of its calls live one level down.
            close = [name]
            hint = f"; policies go under 'defaults': did you mean 'defaults.{name}'?"
        listing = f"; expected one of: {', '.join(allowed)}" if allowed and not close else ""
        return "E0100", f"unknown field {name!r}{hint}{listing}"
    if kind == "missing":
        return "E0102", f"missing required field {str(path[-1]) if path else ''!r}"
    if kind == "window":
        return "E0104", f"{error['msg']}, found {found(value)}"
    if kind in _CUSTOM_CODES:
        return _CUSTOM_CODES[kind], error["msg"]
    if kind in _TYPE_NAMES:
        return "E0101", f"expected {_TYPE_NAMES[kind]}, found {found(value)}"
    if kind == "finite_number":
        return "E0103", f"expected a finite number, found {found(value)}"
    if kind in _RANGE:
        key, words = _RANGE[kind]
        return "E0103", f"expected a value {words.format(ctx.get(key))}, found {found(value)}"
    if kind in ("literal_error", "enum"):
        if path == ("apiVersion",):
            return "E0112", f"expected apiVersion {ctx.get('expected')}, found {found(value)}"
        return "E0104", f"expected {ctx.get('expected')}, found {found(value)}"
    if kind == "string_pattern_mismatch":
        code, meaning = _PATTERNS.get(str(ctx.get("pattern")), ("E0114", "a valid value"))
        return code, f"expected {meaning}, found {found(value)}"
    if kind in ("string_too_long", "too_long"):
        limit = ctx.get("max_length")
        return "E0103", f"expected at most {limit} characters or items, found {found(value)}"
    if kind in ("string_too_short", "too_short"):
        return "E0103", f"expected at least {ctx.get('min_length')} item(s), found {found(value)}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return "E0104", f"expected one of {ctx.get('expected_tags')}, found {found(value)}"
    message = error["msg"].removeprefix("Value error, ")
    return "E0114", f"{message}, found {found(value)}"


def diagnostics_from_error(
    error: ValidationError, model: type[BaseModel], provenance: Provenance
) -> list[Diagnostic]:
    """One located diagnostic per pydantic error."""
    out: list[Diagnostic] = []
    details = error.errors(include_url=False)
    locations = [detail["loc"] for detail in details]
    for detail in details:
        loc = detail["loc"]
        if detail["type"] == "too_short" and any(o[: len(loc)] == loc != o for o in locations):
            continue  # pydantic adds it to a list whose items failed; they are reported
        tagged, is_key, accepts_off = _clean_loc(detail["loc"])
        path = _without_union_tags(model, tagged)
        code, message = _describe(detail, model)
        if accepts_off and code in ("E0101", "E0105"):
            message = message.replace("expected ", "expected off or ", 1)
        if detail["type"] == "missing":
            # point at the mapping that lacks the field, name the field in the path; or at the
            # null of an overlay or override that removed it
            source, inner = provenance.source_of(path)
            removed = provenance.is_overlaid(path)
            line, column = source.lookup.locate(inner if removed else inner[:-1], key=removed)
            out.append(Diagnostic(source.file, line, column, code, format_path(inner), message))
            continue
        key = is_key or detail["type"] == "extra_forbidden"
        out.append(provenance.diagnostic(path, code, message, key=key))
    return out


def validate_data(model: type[ModelT], data: Any, provenance: Provenance) -> ModelT:
    """``model.model_validate(data)``, or SpecError with every error located."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise SpecError(diagnostics_from_error(error, model, provenance)) from None


def validate_document(path: Path, model: type[ModelT], *, display: str | None = None) -> ModelT:
    """Load ``path`` safely and validate it against ``model``; SpecError when invalid."""
    shown = display if display is not None else str(path)
    data, lookup = load_yaml_document(path, shown)
    return validate_data(model, data, Provenance(shown, lookup))
