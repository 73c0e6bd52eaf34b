"""The compiler's entry points: a spec file -> a bundle, in memory or published into a home."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from meshspec.compile.manifest import Previous, spec_digest
from meshspec.compile.pipeline import (
    BuiltBundle,
    EmittedBundle,
    emit_bundle,
    publish_emitted,
    stamp_bundle,
)
from meshspec.compile.resolve import resolve_mesh
from meshspec.compile.writer import StepHook
from meshspec.gcpause import collector_paused
from meshspec.spec import load_spec
from meshspec.spec.yamlio import read_source


@dataclass(frozen=True, slots=True)
class CompileResult:
    out: Path
    """The bundle home."""
    folder: Path
    """The version folder its ``current`` names."""
    version: str
    serial: int
    files: int
    """Files in the bundle, manifest included."""
    unchanged: bool
    """The bundle continued one of the same version (``current`` already held it, or
    ``--previous`` named it)."""


def _emit(path: Path, env: str | None, overrides: Sequence[str]) -> tuple[EmittedBundle, str]:
    """Read ``path`` once (safely: ``read_source``), parse, resolve and emit; the digest is
    of the very bytes parsed."""
    source = read_source(path, str(path))
    digest = spec_digest(source, env, tuple(overrides))
    # The spec is dropped once resolved (it is not held while emitting): for a large mesh it
    # is the biggest thing in memory, and the emitters reuse what it frees.
    mesh = resolve_mesh(load_spec(path, env=env, overrides=overrides, source=source))
    return emit_bundle(mesh), digest


def compile_spec_in_memory(
    path: Path,
    *,
    env: str | None = None,
    overrides: Sequence[str] = (),
    previous: Previous | None = None,
) -> BuiltBundle:
    """Load, validate and resolve ``path``; return the bundle's files without writing them.

    Raises ``meshspec.spec.SpecError`` (located diagnostics) for a bad or unreadable spec.
    """
    with collector_paused():
        emitted, digest = _emit(path, env, overrides)
        return stamp_bundle(emitted, digest, previous)


def compile_spec(
    path: Path,
    out: Path,
    *,
    env: str | None = None,
    overrides: Sequence[str] = (),
    previous: Path | None = None,
    on_step: StepHook | None = None,
) -> CompileResult:
    """Compile ``path`` and publish it into the bundle home ``out`` (created if missing).

    The SOA serial continues from the highest of the home's versions and ``previous`` (a home
    or a version folder). ``on_step`` is called between the publish's steps (for tests).
    Raises SpecError, or OutputError when ``out`` cannot be a bundle home.
    """
    before = Previous.read(previous) if previous is not None else None
    with collector_paused():
        emitted, digest = _emit(path, env, overrides)
        published = publish_emitted(emitted, out, digest, previous=before, on_step=on_step)
    bundle = published.bundle
    serial = bundle.manifest.dns_serial
    return CompileResult(
        out=out,
        folder=published.folder,
        version=bundle.version,
        serial=serial if serial is not None else 0,
        files=len(bundle.files),
        unchanged=published.unchanged,
    )
