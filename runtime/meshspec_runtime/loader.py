"""Load a compiled bundle and refuse it unless it is exactly what the compiler wrote.

``load_bundle(path)`` checks, in order: ``manifest.json`` parses and names a format this runtime
reads; every file it lists exists (as a regular file inside the bundle) with the listed sha256;
no file is present that it does not list (an extra file is either tampering or a bundle mixed
with another, and a bundle is only ever replaced whole); ``policy.json`` is listed, parses, every
reference in it resolves (each upstream names a service with endpoints and a stored policy), and
it carries the manifest's mesh and version. Each failure raises BundleError naming the file (and,
for a bad policy document, the path inside it).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pydantic import ValidationError

from meshspec_runtime.bundle import BUNDLE_FORMAT, Manifest, PolicyDocument

MANIFEST = "manifest.json"
POLICY = "policy.json"


class BundleError(Exception):
    """A bundle the runtime refuses. ``file`` is the offending file's path in the bundle."""

    def __init__(self, bundle: Path, file: str, problem: str) -> None:
        super().__init__(f"{bundle}: {file}: {problem}")
        self.bundle = bundle
        self.file = file
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Bundle:
    path: Path
    manifest: Manifest
    policy: PolicyDocument

    @property
    def version(self) -> str:
        return self.manifest.version


def load_bundle(path: str | os.PathLike[str]) -> Bundle:
    root = Path(path)
    manifest = _read_manifest(root)
    for relative, expected in manifest.files.items():
        _verify_file(root, relative, expected)
    _refuse_unlisted(root, manifest)
    if POLICY not in manifest.files:
        raise BundleError(root, POLICY, f"missing: {MANIFEST} does not list it")
    try:
        policy = PolicyDocument.model_validate_json((root / POLICY).read_bytes())
    except ValidationError as error:
        raise BundleError(
            root, POLICY, f"not a valid policy document: {_problems(error)}"
        ) from None
    if policy.version != manifest.version or policy.mesh != manifest.mesh:
        raise BundleError(
            root,
            POLICY,
            f"belongs to mesh {policy.mesh!r} version {policy.version!r}, but {MANIFEST} says "
            f"mesh {manifest.mesh!r} version {manifest.version!r}",
        )
    return Bundle(root, manifest, policy)


def _problems(error: ValidationError, shown: int = 3) -> str:
    """``path: problem`` for the first few errors, without echoing the (large) input back."""
    problems = []
    for item in error.errors(include_url=False, include_input=False)[:shown]:
        message = item["msg"].removeprefix("Value error, ")
        path = ".".join(str(part) for part in item["loc"])
        problems.append(f"{path}: {message}" if path else message)
    more = error.error_count() - shown
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def _read_manifest(root: Path) -> Manifest:
    try:
        raw = (root / MANIFEST).read_bytes()
    except FileNotFoundError:
        raise BundleError(root, MANIFEST, "missing: is this a meshspec bundle?") from None
    except OSError as error:
        raise BundleError(root, MANIFEST, f"unreadable: {error.strerror}") from None
    try:
        manifest = Manifest.model_validate_json(raw)
    except ValidationError as error:
        raise BundleError(root, MANIFEST, f"not a valid manifest: {_problems(error)}") from None
    if manifest.format != BUNDLE_FORMAT:
        raise BundleError(
            root,
            MANIFEST,
            f"bundle format {manifest.format} is not one this runtime reads "
            f"(format {BUNDLE_FORMAT}); upgrade meshspec-runtime or recompile",
        )
    return manifest


def _verify_file(root: Path, relative: str, expected: str) -> None:
    parts = PurePosixPath(relative).parts
    if not parts or relative.startswith("/") or ".." in parts or relative == MANIFEST:
        raise BundleError(root, relative, f"{MANIFEST} lists a path outside the bundle")
    path = root.joinpath(*parts)
    try:  # the manifest names the path: a name too long for the system is an OSError here
        if path.is_symlink() or not path.is_file():
            raise BundleError(root, relative, "listed in the manifest but missing (or not a file)")
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        raise BundleError(root, relative, f"unreadable: {error.strerror}") from None
    if actual != expected:
        raise BundleError(
            root,
            relative,
            f"sha256 {actual} does not match the manifest's {expected}: the file was changed "
            "after compilation",
        )


def _refuse_unlisted(root: Path, manifest: Manifest) -> None:
    listed = manifest.files.keys()
    for folder, dirs, names in os.walk(root):
        for name in dirs:  # os.walk does not descend into linked folders: refuse them
            if Path(folder, name).is_symlink():
                relative = Path(folder, name).relative_to(root).as_posix()
                raise BundleError(root, relative, "a symbolic link, not part of a bundle")
        for name in names:
            relative = Path(folder, name).relative_to(root).as_posix()
            if relative != MANIFEST and relative not in listed:
                raise BundleError(root, relative, f"not listed in {MANIFEST}")
