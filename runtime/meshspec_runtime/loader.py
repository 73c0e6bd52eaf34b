"""Load a compiled bundle and refuse it unless it is exactly what the compiler wrote.

``path`` is a bundle home (``meshspec_runtime.layout``: its ``current`` is resolved once and
every file is read inside the version folder it named) or a version folder. When a publish
deletes the pinned version while it is read (the home's ``current`` moved on), the read starts
again from the new ``current``, a bounded number of times: a service loading while CI publishes
sees the old or the new version, whole and verified, never a mix and never a spurious error.

The manifest lists the index files, one per bucket; each index lists, with its sha256 and size,
every file whose path hashes into its bucket (``meshspec_runtime.layout.bucket_of``). So every
byte is verified against the manifest, through one index, and a reader that needs one file
reads the manifest, that file's index and the file: three small reads whatever the mesh's size.

``load_bundle(path)`` checks, in order: ``manifest.json`` parses, names a format this runtime
reads and lists exactly one index per bucket; each index is valid, belongs to the bundle and
lists only paths that hash into its bucket; every file listed is a regular file inside the
bundle (no link followed) of the listed size and sha256; no file is present that is not listed
(an extra file is either tampering or a bundle mixed with another); ``policy.json`` is listed,
parses, every reference in it resolves and it carries the manifest's mesh and version.
``load_service(path, name)`` reads the manifest, one index and the bucket of services holding
``name``'s view, and validates that view only. Each file is read once, with a size cap, and the
bytes hashed are the bytes parsed. Every failure raises BundleError naming the file (and, for a
bad document, the path inside it), in bounded time and memory.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pydantic_core
from pydantic import TypeAdapter, ValidationError

from meshspec_runtime.bundle import (
    READABLE_FORMATS,
    BundleIndex,
    Endpoint,
    FileEntry,
    Manifest,
    PolicyDocument,
    ServiceBucket,
    ServiceEntry,
    ServicePolicies,
    Upstream,
)
from meshspec_runtime.layout import (
    CURRENT,
    INDEX,
    Pinned,
    bucket_of,
    index_path,
    is_home,
    pin,
    service_bucket_path,
)
from meshspec_runtime.policy.config import UpstreamPolicy
from meshspec_runtime.safefile import FileProblem, Folders

MANIFEST = "manifest.json"
POLICY = "policy.json"
MANIFEST_LIMIT = 32 * 1024 * 1024
"""Bytes of the manifest or of an index: each lists about 100 bytes per file."""
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


def load_listed_file(
    path: str | os.PathLike[str], locate: Callable[[Manifest], str]
) -> tuple[str, bytes]:
    """One file of one pinned version, verified through its index: ``locate(manifest)`` names
    it (where a file lives can depend on the bundle's index count). Returns its path and bytes;
    BundleError when no index lists it."""

    def read(pinned: Pinned, folders: Folders) -> tuple[str, bytes]:
        _, manifest = _read_manifest(pinned, folders)
        relative = locate(manifest)
        return relative, _read_indexed(pinned, folders, manifest, relative)

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
    _check_index_list(pinned, manifest)
    listed: dict[str, FileEntry] = {}
    for bucket in range(manifest.indexes):
        raw_index, index = _read_index(pinned, folders, manifest, bucket)
        if keep:
            kept[index_path(bucket)] = raw_index
        listed.update(index.files)
    policy_bytes: bytes | None = None
    for relative, entry in listed.items():
        content = _read_listed(pinned, folders, relative, entry)
        if relative == POLICY:
            policy_bytes = content
        if keep:
            kept[relative] = content
    _refuse_unlisted(pinned, folders, listed.keys() | manifest.files.keys())
    if policy_bytes is None:
        raise BundleError(pinned.path, POLICY, "missing: no index lists it")
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
    bucket = bucket_of(service, manifest.buckets)
    relative = service_bucket_path(bucket)
    content = _read_indexed(pinned, folders, manifest, relative)
    try:
        data = pydantic_core.from_json(content)
    except ValueError:
        raise BundleError(pinned.path, relative, "not a valid service bucket: not JSON") from None
    parts: dict[str, dict[str, Any]] = {}
    for key in _BUCKET_PARTS:
        value = data.get(key) if isinstance(data, dict) else None
        if not isinstance(value, dict):
            raise BundleError(
                pinned.path,
                relative,
                f"not a valid service bucket: {key}: missing or not an object",
            )
        parts[key] = value
    header = {key: value for key, value in data.items() if key not in _BUCKET_PARTS}
    try:  # the header and what this service uses are validated; the rest is only parsed
        head = ServiceBucket.model_validate({**header, **{part: {} for part in _BUCKET_PARTS}})
    except ValidationError as error:
        raise BundleError(
            pinned.path, relative, f"not a valid service bucket: {_problems(error)}"
        ) from None
    _check_belongs(pinned, relative, head.mesh, head.version, manifest)
    if head.bucket != bucket:
        raise BundleError(pinned.path, relative, f"says it is bucket {head.bucket}, not {bucket}")
    entry = parts["services"].get(service)
    if entry is None:
        raise ServiceNotInBundleError(
            pinned.path,
            relative,
            f"no service {service!r} in mesh {manifest.mesh!r} version {manifest.version}"
            f"{_close_names(pinned, folders, manifest, service)}",
        )
    try:
        view = _assemble(service, entry, parts["endpoints"], parts["policies"])
    except _BucketProblem as problem:
        raise BundleError(pinned.path, relative, f"not a valid service bucket: {problem}") from None
    if view.name != service:
        raise BundleError(
            pinned.path, relative, f"holds service {view.name!r} under the name {service!r}"
        )
    return ServiceBundle(pinned.path, manifest, view)


_BUCKET_PARTS = ("services", "endpoints", "policies")


class _BucketProblem(Exception):
    """What a service uses of its bucket is invalid or does not resolve: ``path: problem``."""


def _assemble(
    service: str, entry: object, endpoints: dict[str, Any], policies: dict[str, Any]
) -> ServicePolicies:
    """``service``'s view from its bucket's parsed parts, validating only what it uses (as
    ``PolicyDocument.service`` assembles it from a validated document)."""
    path = f"services.{service}"
    try:
        parsed = ServiceEntry.model_validate(entry)
    except ValidationError as error:
        raise _BucketProblem(_problems(error, prefix=f"{path}.")) from None
    upstreams: dict[str, Upstream] = {}
    for upstream, ref in parsed.upstreams.items():
        where = f"{path}.upstreams.{upstream}"
        if ref.service not in endpoints:
            raise _BucketProblem(f"{where}.service: no service {ref.service!r} in endpoints")
        if ref.policy not in policies:
            raise _BucketProblem(f"{where}.policy: no policy {ref.policy!r} in policies")
        try:
            instances = _ENDPOINTS.validate_python(endpoints[ref.service])
        except ValidationError as error:
            raise _BucketProblem(_problems(error, prefix=f"endpoints.{ref.service}.")) from None
        try:
            policy = UpstreamPolicy.model_validate(policies[ref.policy])
        except ValidationError as error:
            raise _BucketProblem(_problems(error, prefix=f"policies.{ref.policy}.")) from None
        upstreams[upstream] = Upstream.model_construct(
            service=ref.service, endpoints=instances, policy=policy
        )
    return ServicePolicies.model_construct(
        name=parsed.name, protocol=parsed.protocol, port=parsed.port, upstreams=upstreams
    )


_ENDPOINTS: TypeAdapter[tuple[Endpoint, ...]] = TypeAdapter(tuple[Endpoint, ...])


def _close_names(pinned: Pinned, folders: Folders, manifest: Manifest, service: str) -> str:
    """``; did you mean ...?`` from the names in ``policy.json`` (read, verified, only for
    this error), or nothing when none is close or it cannot be read."""
    try:
        names = pydantic_core.from_json(_read_indexed(pinned, folders, manifest, POLICY))[
            "services"
        ]
        close = difflib.get_close_matches(service, [str(name) for name in names], n=3)
    except (BundleError, ValueError, KeyError, TypeError):
        return ""
    return f"; did you mean {', '.join(map(repr, close))}?" if close else ""


def _check_index_list(pinned: Pinned, manifest: Manifest) -> None:
    expected = {index_path(bucket) for bucket in range(manifest.indexes)}
    for relative in manifest.files:
        if relative not in expected:
            raise BundleError(
                pinned.path,
                MANIFEST,
                f"lists {relative!r}, which is not one of its {manifest.indexes} index files",
            )
    for relative in sorted(expected - manifest.files.keys()):
        raise BundleError(pinned.path, relative, f"not listed in {MANIFEST}")


def _read_index(
    pinned: Pinned, folders: Folders, manifest: Manifest, bucket: int
) -> tuple[bytes, BundleIndex]:
    relative = index_path(bucket)
    entry = manifest.files.get(relative)
    if entry is None:
        raise BundleError(pinned.path, relative, f"not listed in {MANIFEST}")
    content = _read_listed(pinned, folders, relative, entry, MANIFEST_LIMIT)
    try:
        index = BundleIndex.model_validate_json(content)
    except ValidationError as error:
        raise BundleError(pinned.path, relative, f"not a valid index: {_problems(error)}") from None
    _check_belongs(pinned, relative, index.mesh, index.version, manifest)
    if index.bucket != bucket:
        raise BundleError(pinned.path, relative, f"says it is bucket {index.bucket}, not {bucket}")
    for path in index.files:
        if path == MANIFEST or path.startswith(f"{INDEX}/"):
            raise BundleError(pinned.path, relative, f"lists {path!r}, which only {MANIFEST} may")
        belongs = bucket_of(path, manifest.indexes)
        if belongs != bucket:
            raise BundleError(
                pinned.path, relative, f"lists {path!r}, which hashes into {index_path(belongs)}"
            )
    return content, index


def _read_indexed(pinned: Pinned, folders: Folders, manifest: Manifest, relative: str) -> bytes:
    """The verified bytes of ``relative``, found through its index."""
    _, index = _read_index(pinned, folders, manifest, bucket_of(relative, manifest.indexes))
    entry = index.files.get(relative)
    if entry is None:
        raise BundleError(pinned.path, relative, "missing: no index lists it")
    return _read_listed(pinned, folders, relative, entry)


def _check_belongs(pinned: Pinned, file: str, mesh: str, version: str, manifest: Manifest) -> None:
    if version != manifest.version or mesh != manifest.mesh:
        raise BundleError(
            pinned.path,
            file,
            f"belongs to mesh {mesh!r} version {version!r}, but {MANIFEST} says "
            f"mesh {manifest.mesh!r} version {manifest.version!r}",
        )


def _problems(error: ValidationError, shown: int = 3, prefix: str = "") -> str:
    """``path: problem`` for the first few errors, without echoing the (large) input back."""
    problems = []
    for item in error.errors(include_url=False, include_input=False)[:shown]:
        message = item["msg"].removeprefix("Value error, ")
        inner = ".".join(str(part) for part in item["loc"])
        path = prefix + inner if inner else prefix.rstrip(".")
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
    if manifest.format not in READABLE_FORMATS:
        raise BundleError(
            pinned.path,
            MANIFEST,
            f"bundle format {manifest.format} is not one this runtime reads "
            f"({_formats()}); upgrade meshspec-runtime or recompile",
        )
    return raw, manifest


def _read_listed(
    pinned: Pinned, folders: Folders, relative: str, entry: FileEntry, limit: int = FILE_LIMIT
) -> bytes:
    parts = relative.split("/")
    if relative == MANIFEST or "\0" in relative or any(p in ("", ".", "..") for p in parts):
        raise BundleError(pinned.path, relative, "listed, but a path outside the bundle")
    try:
        content = folders.read(relative, limit, expected_size=entry.size)
    except FileProblem as problem:
        text = str(problem)
        if text == "missing" or text.startswith("missing folder"):
            text = "listed but missing"
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


def _refuse_unlisted(pinned: Pinned, folders: Folders, listed: AbstractSet[str]) -> None:
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
                raise BundleError(pinned.path, relative, "not listed in any index")


def _formats() -> str:
    *earlier, last = READABLE_FORMATS
    return f"formats {', '.join(map(str, earlier))} and {last}" if earlier else f"format {last}"
