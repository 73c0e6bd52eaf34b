"""Resolved mesh -> bundle files (every emitter, then version, serial, manifest) -> disk."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from meshspec_runtime.bundle import Manifest

from meshspec.compile import manifest as manifests
from meshspec.compile import stamp
from meshspec.compile.emitters import EMITTERS, Emitter
from meshspec.compile.ir import ResolvedMesh
from meshspec.compile.writer import write_atomically


@dataclass(frozen=True, slots=True)
class BuiltBundle:
    files: dict[str, bytes]
    """Every file of the bundle, manifest.json included, by path relative to the bundle."""
    manifest: Manifest

    @property
    def version(self) -> str:
        return self.manifest.version


def build_bundle(
    mesh: ResolvedMesh,
    spec_digest: str,
    previous: manifests.Previous | None = None,
    emitters: Sequence[Emitter] = EMITTERS,
) -> BuiltBundle:
    """The bundle's files in memory. ``previous`` is the bundle this one replaces (serial)."""
    emitted: dict[str, bytes] = {}
    for emitter in emitters:
        for path, content in emitter(mesh).items():
            _check_path(path, emitted)
            emitted[path] = content
    placeholder_digests = {path: manifests.sha256(content) for path, content in emitted.items()}
    version = manifests.content_version(placeholder_digests)
    serial = manifests.next_serial(previous, version)
    files: dict[str, bytes] = {}
    digests: dict[str, str] = {}
    for path, content in emitted.items():
        final = stamp.substitute(content, version, serial)
        files[path] = final
        digests[path] = placeholder_digests[path] if final is content else manifests.sha256(final)
    manifest = manifests.manifest(mesh.name, version, spec_digest, serial, digests)
    files[manifests.PATH] = manifests.manifest_bytes(manifest)
    return BuiltBundle(files, manifest)


def write_bundle(bundle: BuiltBundle, out: Path) -> None:
    """Write ``bundle`` to ``out`` atomically, manifest last within the staging directory."""
    write_atomically(out, _in_write_order(bundle.files))


def _in_write_order(files: dict[str, bytes]) -> Iterator[tuple[str, bytes]]:
    for path in sorted(files):
        if path != manifests.PATH:
            yield path, files[path]
    yield manifests.PATH, files[manifests.PATH]


def _check_path(path: str, seen: dict[str, bytes]) -> None:
    """Emitters are ours; a bad path is a bug in one, caught before anything is written."""
    parts = [part for part in path.split("/") if part not in ("", ".")]  # as PurePosixPath's
    if not parts or path.startswith("/") or ".." in parts or "\\" in path:
        raise RuntimeError(f"emitter produced an unsafe bundle path: {path!r}")
    if path in seen or path == manifests.PATH:
        raise RuntimeError(f"two emitters produced the same bundle path: {path!r}")
