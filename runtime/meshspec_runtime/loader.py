"""Load a compiled bundle and refuse it unless it is exactly what the compiler wrote.

``path`` is a bundle home (``meshspec_runtime.layout``: its ``current`` is resolved once and
every file is read inside the version folder it named) or a version folder. When a publish
deletes the pinned version while it is read (the home's ``current`` moved on), the read starts
again from the new ``current``, a bounded number of times: a service loading while CI publishes
sees the old or the new version, whole and verified, never a mix and never a spurious error.

``load_bundle(path)`` checks, in order: ``manifest.json`` parses and names a format this runtime
reads; every file it lists is a regular file inside the bundle (no link followed) of the listed
size and sha256; no file is present that it does not list (an extra file is either tampering or
a bundle mixed with another); ``policy.json`` is listed, parses, every reference in it resolves
and it carries the manifest's mesh and version. ``load_service(path, name)`` reads the manifest
and that service's slice only. Each file is read once, with a size cap, and the bytes hashed are
the bytes parsed. Every failure raises BundleError naming the file (and, for a bad document,
the path inside it), in bounded time and memory.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from meshspec_runtime.bundle import (
    BUNDLE_FORMAT,
    Manifest,
    PolicyDocument,
    ServicePolicies,
    ServiceSlice,
)
from meshspec_runtime.layout import CURRENT, SERVICES, Pinned, is_home, pin, service_slice_path
from meshspec_runtime.safefile import FileProblem, Folders

MANIFEST = "manifest.json"
POLICY = "policy.json"
MANIFEST_LIMIT = 32 * 1024 * 1024
"""Bytes: ample for the ~600 bytes per service the manifest lists (about 50,000 services)."""
FILE_LIMIT = 512 * 1024 * 1024
"""Bytes of any other file; the manifest's own sizes bound each file more tightly."""
PIN_TRIES = 8
"""Reads started again, at most, when publishes keep replacing the pinned version."""

_T = TypeVar("_T")


class BundleError(Exception):
    """A bundle the runtime refuses. ``file`` is the offending file's path in the bundle."""

    def __init__(self, bundle: Path, file: str, problem: str) -> None:
        super().__init__(f"{bundle}: {file}: {problem}")
        self.bundle = bundle
        self.file = file
        self.problem = problem


class ServiceNotInBundleError(BundleError):
    """``load_service`` for a service the bundle holds no slice of."""


@dataclass(frozen=True, slots=True)
class Bundle:
    path: Path
    """The version folder that was read."""
    manifest: Manifest
    policy: PolicyDocument

    @property
    def version(self) -> str:
        return self.manifest.version


@dataclass(frozen=True, slots=True)
class ServiceBundle:
    """One service's view of a bundle: what ``load_service`` returns."""

    path: Path
    """The version folder that was read."""
    manifest: Manifest
    service: ServicePolicies
    """What ``policies_for`` takes."""

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def mesh(self) -> str:
        return self.manifest.mesh


def load_bundle(path: str | os.PathLike[str]) -> Bundle:
    """The whole bundle at ``path`` (a home or a version folder), every file verified."""
    return _pinned_read(Path(path), lambda pinned, folders: _read_bundle(pinned, folders)[0])


def load_bundle_files(path: str | os.PathLike[str]) -> tuple[Bundle, dict[str, bytes]]:
    """As ``load_bundle``, with the verified bytes of every file (manifest included)."""
    return _pinned_read(Path(path), lambda pinned, folders: _read_bundle(pinned, folders, True))


def load_service(path: str | os.PathLike[str], service: str) -> ServiceBundle:
    """``service``'s view of the bundle at ``path``: only the manifest and its slice are read
    and verified. Raises ``ServiceNotInBundleError`` (a BundleError) for an unknown service."""
    return _pinned_read(Path(path), lambda pinned, folders: _read_service(pinned, folders, service))


def load_listed_file(path: str | os.PathLike[str], relative: str) -> tuple[Manifest, bytes]:
    """The manifest and the verified bytes of one file it lists (``consul/services/x.json``),
    read from one pinned version. Raises BundleError when the manifest does not list it."""

    def read(pinned: Pinned, folders: Folders) -> tuple[Manifest, bytes]:
        _, manifest = _read_manifest(pinned, folders)
        if relative not in manifest.files:
            raise BundleError(
                pinned.path, relative, f"not in mesh {manifest.mesh!r} version {manifest.version}"
            )
        return manifest, _read_listed(pinned, folders, manifest, relative)

    return _pinned_read(Path(path), read)


def _pinned_read(root: Path, read: Callable[[Pinned, Folders], _T]) -> _T:
    for attempt in range(1, PIN_TRIES + 1):
        last = attempt == PIN_TRIES
        try:
            pinned = pin(root)
        except OSError as error:
            if not last and is_home(root) and not isinstance(error, NotADirectoryError):
                continue  # current named a version that was deleted before it was opened
            raise _unpinnable(root, error) from None
        try:
            with Folders(pinned.fd) as folders:
                return read(pinned, folders)
        except BundleError:
            if last or pinned.still_current():
                raise
        finally:
            pinned.close()
    raise AssertionError("unreachable: the last attempt returns or raises")


def _unpinnable(root: Path, error: OSError) -> BundleError:
    if is_home(root):
        if isinstance(error, FileNotFoundError):
            return BundleError(root, CURRENT, "missing: no version was published here yet")
        return BundleError(root, CURRENT, f"unusable: {error.strerror}")
    if isinstance(error, FileNotFoundError):
        return BundleError(root, MANIFEST, "missing: is this a meshspec bundle?")
    return BundleError(root, ".", f"not a bundle folder: {error.strerror}")


def _read_bundle(
    pinned: Pinned, folders: Folders, keep: bool = False
) -> tuple[Bundle, dict[str, bytes]]:
    raw_manifest, manifest = _read_manifest(pinned, folders)
    kept: dict[str, bytes] = {MANIFEST: raw_manifest} if keep else {}
    policy_bytes: bytes | None = None
    for relative in manifest.files:
        content = _read_listed(pinned, folders, manifest, relative)
        if relative == POLICY:
            policy_bytes = content
        if keep:
            kept[relative] = content
    _refuse_unlisted(pinned, folders, manifest)
    if policy_bytes is None:
        raise BundleError(pinned.path, POLICY, f"missing: {MANIFEST} does not list it")
    try:
        policy = PolicyDocument.model_validate_json(policy_bytes)
    except ValidationError as error:
        raise BundleError(
            pinned.path, POLICY, f"not a valid policy document: {_problems(error)}"
        ) from None
    _check_belongs(pinned, POLICY, policy.mesh, policy.version, manifest)
    return Bundle(pinned.path, manifest, policy), kept


def _read_service(pinned: Pinned, folders: Folders, service: str) -> ServiceBundle:
    _, manifest = _read_manifest(pinned, folders)
    relative = service_slice_path(service)
    if relative not in manifest.files:
        prefix, suffix = f"{SERVICES}/", ".json"
        known = [
            path[len(prefix) : -len(suffix)]
            for path in manifest.files
            if path.startswith(prefix) and path.endswith(suffix)
        ]
        close = difflib.get_close_matches(service, known, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ServiceNotInBundleError(
            pinned.path,
            relative,
            f"no service {service!r} in mesh {manifest.mesh!r} version {manifest.version}{hint}",
        )
    content = _read_listed(pinned, folders, manifest, relative)
    try:
        piece = ServiceSlice.model_validate_json(content)
    except ValidationError as error:
        raise BundleError(
            pinned.path, relative, f"not a valid service slice: {_problems(error)}"
        ) from None
    _check_belongs(pinned, relative, piece.mesh, piece.version, manifest)
    if piece.service.name != service:
        raise BundleError(
            pinned.path, relative, f"holds service {piece.service.name!r}, not {service!r}"
        )
    return ServiceBundle(pinned.path, manifest, piece.service)


def _check_belongs(pinned: Pinned, file: str, mesh: str, version: str, manifest: Manifest) -> None:
    if version != manifest.version or mesh != manifest.mesh:
        raise BundleError(
            pinned.path,
            file,
            f"belongs to mesh {mesh!r} version {version!r}, but {MANIFEST} says "
            f"mesh {manifest.mesh!r} version {manifest.version!r}",
        )


def _problems(error: ValidationError, shown: int = 3) -> str:
    """``path: problem`` for the first few errors, without echoing the (large) input back."""
    problems = []
    for item in error.errors(include_url=False, include_input=False)[:shown]:
        message = item["msg"].removeprefix("Value error, ")
        path = ".".join(str(part) for part in item["loc"])
        problems.append(f"{path}: {message}" if path else message)
    more = error.error_count() - shown
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def _read_manifest(pinned: Pinned, folders: Folders) -> tuple[bytes, Manifest]:
    try:
        raw = folders.read(MANIFEST, MANIFEST_LIMIT)
    except FileProblem as problem:
        text = str(problem)
        if text == "missing":
            text = "missing: is this a meshspec bundle?"
        raise BundleError(pinned.path, MANIFEST, text) from None
    try:
        manifest = Manifest.model_validate_json(raw)
    except ValidationError as error:
        raise BundleError(
            pinned.path, MANIFEST, f"not a valid manifest: {_problems(error)}"
        ) from None
    if manifest.format != BUNDLE_FORMAT:
        raise BundleError(
            pinned.path,
            MANIFEST,
            f"bundle format {manifest.format} is not one this runtime reads "
            f"(format {BUNDLE_FORMAT}); upgrade meshspec-runtime or recompile",
        )
    return raw, manifest


def _read_listed(pinned: Pinned, folders: Folders, manifest: Manifest, relative: str) -> bytes:
    parts = relative.split("/")
    if relative == MANIFEST or "\0" in relative or any(p in ("", ".", "..") for p in parts):
        raise BundleError(pinned.path, relative, f"{MANIFEST} lists a path outside the bundle")
    entry = manifest.files[relative]
    try:
        content = folders.read(relative, FILE_LIMIT, expected_size=entry.size)
    except FileProblem as problem:
        text = str(problem)
        if text == "missing" or text.startswith("missing folder"):
            text = "listed in the manifest but missing"
        raise BundleError(pinned.path, relative, text) from None
    actual = hashlib.sha256(content).hexdigest()
    if actual != entry.sha256:
        raise BundleError(
            pinned.path,
            relative,
            f"sha256 {actual} does not match the manifest's {entry.sha256}: the file was "
            "changed after compilation",
        )
    return content


def _refuse_unlisted(pinned: Pinned, folders: Folders, manifest: Manifest) -> None:
    listed = manifest.files.keys()
    pending = [""]
    while pending:
        folder = pending.pop()
        try:
            fd = folders.folder(folder)
            with os.scandir(fd) as entries:
                found = [(entry.name, entry.is_symlink(), entry.is_dir()) for entry in entries]
        except FileProblem as problem:
            raise BundleError(pinned.path, folder, str(problem)) from None
        except OSError as error:
            raise BundleError(pinned.path, folder or ".", f"unreadable: {error.strerror}") from None
        for name, is_link, is_dir in found:
            relative = f"{folder}/{name}" if folder else name
            if is_link:
                raise BundleError(pinned.path, relative, "a symbolic link, not part of a bundle")
            if is_dir:
                pending.append(relative)
            elif relative != MANIFEST and relative not in listed:
                raise BundleError(pinned.path, relative, f"not listed in {MANIFEST}")
