"""The compiler's entry points: a spec file -> a bundle, in memory or on disk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from meshspec.compile.manifest import Previous, spec_digest
from meshspec.compile.pipeline import BuiltBundle, build_bundle, write_bundle
from meshspec.compile.resolve import resolve_mesh
from meshspec.gcpause import collector_paused
from meshspec.spec import load_spec


@dataclass(frozen=True, slots=True)
class CompileResult:
    out: Path
    version: str
    serial: int
    files: int
    """Files in the bundle, manifest included."""
    unchanged: bool
    """The bundle replaced one of the same version."""


def compile_spec_in_memory(
    path: Path,
    *,
    env: str | None = None,
    overrides: Sequence[str] = (),
    previous: Previous | None = None,
) -> BuiltBundle:
    """Load, validate and resolve ``path``; return the bundle's files without writing them.

    Raises ``meshspec.spec.SpecError`` (located diagnostics) for a bad spec, OSError when the
    file cannot be read.
    """
    with collector_paused():
        source = path.read_bytes()
        spec = load_spec(path, env=env, overrides=overrides)
        digest = spec_digest(source, env, tuple(overrides))
        return build_bundle(resolve_mesh(spec), digest, previous)


def compile_spec(
    path: Path,
    out: Path,
    *,
    env: str | None = None,
    overrides: Sequence[str] = (),
    previous: Path | None = None,
) -> CompileResult:
    """Compile ``path`` into the bundle folder ``out``, atomically.

    The SOA serial continues from ``previous`` (a bundle folder), by default from the bundle
    already at ``out``.
    """
    before = Previous.read(previous if previous is not None else out)
    with collector_paused():
        bundle = compile_spec_in_memory(path, env=env, overrides=overrides, previous=before)
        write_bundle(bundle, out)
    serial = bundle.manifest.dns_serial
    return CompileResult(
        out=out,
        version=bundle.version,
        serial=serial if serial is not None else 0,
        files=len(bundle.files),
        unchanged=before is not None and before.version == bundle.version,
    )
