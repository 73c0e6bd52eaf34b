"""Resolved mesh -> bundle files (every emitter, then version, serial, indexes, manifest) -> disk.

Emitting (the costly part) needs no previous bundle; stamping the serial does, so a publish
emits first and stamps under the home's lock, where the previous serial is read. The indexes
(``index/<n>.json``: every file whose path hashes into n, with its final sha256 and size) and
the manifest (every index) are made last, from the stamped files.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from meshspec_runtime.bundle import Manifest
from meshspec_runtime.layout import INDEX

from meshspec.compile import manifest as manifests
from meshspec.compile import stamp
from meshspec.compile.emitters import EMITTERS, Emitter
from meshspec.compile.ir import ResolvedMesh
from meshspec.compile.writer import BundleHome, StepHook


@dataclass(frozen=True, slots=True)
class BuiltBundle:
    files: dict[str, bytes]
    """Every file of the bundle, manifest.json and the indexes included, by path relative to
    the bundle."""
    manifest: Manifest
    listed: dict[str, tuple[str, int]]
    """Every file the indexes list -> its sha256 and size."""

    @property
    def version(self) -> str:
        return self.manifest.version


@dataclass(frozen=True, slots=True)
class EmittedBundle:
    """Every file as emitted (placeholders in place) and the version they make."""

    mesh: str
    files: dict[str, bytes]
    digests: dict[str, str]
    version: str
    indexes: int
    buckets: int


@dataclass(frozen=True, slots=True)
class Published:
    bundle: BuiltBundle
    folder: Path
    """The version folder ``current`` names."""
    unchanged: bool
    """``current`` already held this version: nothing was written."""


def emit_bundle(mesh: ResolvedMesh, emitters: Sequence[Emitter] = EMITTERS) -> EmittedBundle:
    emitted: dict[str, bytes] = {}
    for emitter in emitters:
        for path, content in emitter(mesh).items():
            _check_path(path, emitted)
            emitted[path] = content
    digests = {path: manifests.sha256(content) for path, content in emitted.items()}
    version = manifests.content_version(digests)
    return EmittedBundle(mesh.name, emitted, digests, version, mesh.indexes(), mesh.buckets())


def stamp_bundle(
    emitted: EmittedBundle, spec_digest: str, previous: manifests.Previous | None
) -> BuiltBundle:
    """The final files: version and serial (continued from ``previous``) stamped, indexes,
    manifest."""
    version = emitted.version
    serial = manifests.next_serial(previous, version)
    files: dict[str, bytes] = {}
    entries: dict[str, tuple[str, int]] = {}
    for path, content in emitted.files.items():
        final = stamp.substitute(content, version, serial)
        files[path] = final
        digest = emitted.digests[path] if final is content else manifests.sha256(final)
        entries[path] = (digest, len(final))
    indexes = manifests.indexes(emitted.mesh, version, emitted.indexes, entries)
    files.update(indexes)
    index_entries = {path: (manifests.sha256(data), len(data)) for path, data in indexes.items()}
    counts = (emitted.indexes, emitted.buckets)
    manifest = manifests.manifest(emitted.mesh, version, spec_digest, serial, counts, index_entries)
    files[manifests.PATH] = manifests.manifest_bytes(manifest)
    return BuiltBundle(files, manifest, entries)


def build_bundle(
    mesh: ResolvedMesh,
    spec_digest: str,
    previous: manifests.Previous | None = None,
    emitters: Sequence[Emitter] = EMITTERS,
) -> BuiltBundle:
    """The bundle's files in memory. ``previous`` is the bundle this one replaces (serial)."""
    return stamp_bundle(emit_bundle(mesh, emitters), spec_digest, previous)


def publish_emitted(
    emitted: EmittedBundle,
    home: Path,
    spec_digest: str,
    *,
    previous: manifests.Previous | None = None,
    on_step: StepHook | None = None,
) -> Published:
    """Stamp and publish ``emitted`` into the bundle home ``home``, under its lock.

    The serial continues from the highest of: ``current``, every folder left in ``versions``
    (an interrupted publish's too) and ``previous`` (``--previous``). When ``current`` already
    holds this version, nothing is written (its serial stays).
    """
    with BundleHome.locked(home, on_step) as locked:
        current_name = locked.current_name()
        current = manifests.Previous.read(locked.path) if current_name else None
        found = [manifests.Previous.read(folder) for folder in locked.version_folders()]
        locked.remove_leftovers()
        if current is not None and current.version == emitted.version:
            built = stamp_bundle(emitted, spec_digest, current)
            return Published(built, locked.versions / str(current_name), unchanged=True)
        top = manifests.latest([current, previous, *found])
        built = stamp_bundle(emitted, spec_digest, top)
        folder = locked.publish(locked.free_name(built.version), _in_write_order(built.files))
        return Published(built, folder, unchanged=top is not None and top.version == built.version)


def write_bundle(bundle: BuiltBundle, home: Path, on_step: StepHook | None = None) -> Path:
    """Publish the finished ``bundle`` (its serial already stamped) into ``home``, atomically.
    Returns the version folder ``current`` now names."""
    with BundleHome.locked(home, on_step) as locked:
        locked.remove_leftovers()
        return locked.publish(locked.free_name(bundle.version), _in_write_order(bundle.files))


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
    if parts[0] == INDEX:
        raise RuntimeError(f"emitter produced a path in the indexes' folder: {path!r}")
    if path in seen or path == manifests.PATH:
        raise RuntimeError(f"two emitters produced the same bundle path: {path!r}")
