"""Load a mesh spec file: parse, validate, apply an environment and overrides, check.

``load_spec`` is the entry point; ``check_spec_file`` is what ``meshspec validate`` runs
(it also checks every environment when none is chosen).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from meshspec.gcpause import collector_paused
from meshspec.spec import semantic
from meshspec.spec.diagnostics import Diagnostic, SpecError
from meshspec.spec.document import Provenance, diagnostics_from_error, found
from meshspec.spec.merge import apply_environment, apply_overrides
from meshspec.spec.models import MeshSpec
from meshspec.spec.yamlio import PositionLookup, load_yaml_document


def _validate(data: Any, provenance: Provenance) -> MeshSpec:
    try:
        spec = MeshSpec.model_validate(data)
    except ValidationError as error:
        problems = diagnostics_from_error(error, MeshSpec, provenance)
        # Report what else can be known in the same run: the call graph, and the semantic
        # checks of the services that did pass the models.
        problems += semantic.check_call_graph(data, provenance)
        problems += _check_valid_services(data, error, provenance)
        raise SpecError(problems) from None
    problems = semantic.check(spec, provenance)
    if problems:
        raise SpecError(problems)
    return spec


def _check_valid_services(
    data: dict[str, Any], error: ValidationError, provenance: Provenance
) -> list[Diagnostic]:
    """Semantic checks of the document without its broken services, when every type error
    lies inside a service (a broken mesh or defaults would cast doubt on everything)."""
    broken: set[Any] = set()
    for detail in error.errors(include_url=False):
        loc = detail["loc"]
        if len(loc) < 2 or loc[0] != "services":
            return []
        broken.add(loc[1])
    services = data.get("services")
    if not isinstance(services, dict):
        return []
    rest = {**data, "services": {k: v for k, v in services.items() if k not in broken}}
    try:
        spec = MeshSpec.model_validate(rest)
    except ValidationError:
        return []
    return semantic.check(spec, provenance, call_graph=False)


def _document(
    path: Path, display: str, source: bytes | None = None
) -> tuple[dict[str, Any], PositionLookup]:
    data, lookup = load_yaml_document(path, display, source)
    starts = lookup.document_starts() if isinstance(data, list) else []
    if len(starts) > 1:
        line, column = starts[1]
        raise SpecError(
            [
                Diagnostic(
                    display,
                    line,
                    column,
                    "E0014",
                    "",
                    f"a second YAML document starts here ({len(starts)} in the file); expected "
                    "one document, a mapping with apiVersion, mesh and services",
                )
            ]
        )
    if not isinstance(data, dict):
        raise SpecError(
            [
                Diagnostic(
                    display,
                    1,
                    1,
                    "E0014",
                    "",
                    f"expected a mapping with apiVersion, mesh and services at the top (one "
                    f"document), found {found(data)}",
                )
            ]
        )
    return data, lookup


def load_spec(
    path: Path,
    *,
    env: str | None = None,
    overrides: Sequence[str] = (),
    display: str | None = None,
    source: bytes | None = None,
) -> MeshSpec:
    """Parse and validate ``path``, merge environment ``env`` and ``--set`` ``overrides``.
    ``source``: the file's bytes when the caller already read them (``read_source``).

    Raises :class:`SpecError` with every diagnostic found (an unreadable file, an unknown
    environment or a malformed override included: ``SpecError.is_usage_error``).
    """
    return load_spec_located(path, env=env, overrides=overrides, display=display, source=source)[0]


def load_spec_located(
    path: Path,
    *,
    env: str | None = None,
    overrides: Sequence[str] = (),
    display: str | None = None,
    source: bytes | None = None,
) -> tuple[MeshSpec, Provenance]:
    """Like :func:`load_spec`, with the provenance that locates any path of the merged spec
    where it was written (what ``meshspec lint`` points its warnings at)."""
    shown = display if display is not None else str(path)
    with collector_paused():
        data, lookup = _document(path, shown, source)
        return _load(data, lookup, shown, env, overrides)


def load_spec_text(
    text: str, *, display: str, env: str | None = None, overrides: Sequence[str] = ()
) -> MeshSpec:
    """Like :func:`load_spec`, from the spec's text (a sweep ships specs to workers as data)."""
    with collector_paused():
        data, lookup = _document(Path(display), display, text.encode("utf-8"))
        return _load(data, lookup, display, env, overrides)[0]


def _load(
    data: dict[str, Any],
    lookup: PositionLookup,
    shown: str,
    env: str | None,
    overrides: Sequence[str],
    *,
    base_checked: bool = False,
) -> tuple[MeshSpec, Provenance]:
    provenance = Provenance(shown, lookup)
    if env is None and not overrides:
        return _validate(data, provenance), provenance
    base_problems: list[Diagnostic] = []
    if not base_checked:
        try:
            _validate(data, Provenance(shown, lookup))
        except SpecError as error:
            base_problems = error.diagnostics
    try:
        merged = apply_environment(data, env, provenance) if env is not None else data
        merged = apply_overrides(merged, overrides, provenance) if overrides else merged
        spec = _validate(merged, provenance)
    except SpecError as error:
        raise SpecError([*base_problems, *error.diagnostics]) from None
    if base_problems:
        raise SpecError(base_problems)
    return spec, provenance


def check_spec_file(
    path: Path,
    *,
    env: str | None = None,
    overrides: Sequence[str] = (),
    display: str | None = None,
) -> MeshSpec:
    """What ``meshspec validate`` checks: like :func:`load_spec`, and with no ``env``, every
    declared environment too (so an overlay's mistakes are found before it is deployed).

    Returns the spec as loaded (base, or ``env``), or raises SpecError with all problems.
    """
    shown = display if display is not None else str(path)
    with collector_paused():
        return _check(path, shown, env, overrides)


def _check(path: Path, shown: str, env: str | None, overrides: Sequence[str]) -> MeshSpec:
    data, lookup = _document(path, shown)
    problems: list[Diagnostic] = []
    spec: MeshSpec | None = None
    try:
        spec = _load(data, lookup, shown, env, overrides)[0]
    except SpecError as error:
        problems.extend(error.diagnostics)
    # Environments are checked too when the base is valid, or when only the overlays
    # themselves are wrong (their mistakes belong in the same report; any other base error
    # would only echo through every environment).
    overlays_only = all(d.path.startswith("environments.") for d in problems)
    if env is None and overlays_only:
        for name in _environment_names(data):
            try:
                _load(data, lookup, shown, name, overrides, base_checked=True)
            except SpecError as error:
                problems.extend(error.diagnostics)
    if problems or spec is None:
        raise SpecError(problems)
    return spec


def _environment_names(data: dict[str, Any]) -> list[str]:
    environments = data.get("environments")
    if not isinstance(environments, dict):
        return []
    return sorted(
        name
        for name, overlay in environments.items()
        if isinstance(name, str) and isinstance(overlay, dict)
    )
