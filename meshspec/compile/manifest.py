"""The bundle's version, its SOA serial, its indexes and ``manifest.json``.

- version: the first 16 hex digits of sha256 over the sorted ``path NUL sha256(content)`` lines
  of every file as emitted, i.e. with the version and serial placeholders still in place
  (``meshspec.compile.stamp``). The same resolved mesh gives the same version; any change to
  what a file says gives a new one; the version never depends on itself or on the serial.
- serial: a content hash cannot increase, so the serial continues from the previous bundle:
  its serial when its version is the same, its serial + 1 (RFC 1982 arithmetic) when the
  version changed, ``BASE_SERIAL`` when there is no previous bundle. In a bundle home the
  previous bundle is the one with the highest serial among ``current``, every folder left in
  ``versions`` (also by an interrupted publish) and ``--previous``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from meshspec_runtime.bundle import BUNDLE_FORMAT, FileEntry, Manifest
from meshspec_runtime.layout import bucket_of, index_path, pin
from meshspec_runtime.loader import MANIFEST_LIMIT
from meshspec_runtime.safefile import FileProblem, read_regular

from meshspec.compile.jsonfile import dump_json, dump_json_indented

PATH = "manifest.json"
VERSION_LENGTH = 16
BASE_SERIAL = 1
_SERIAL_MODULUS = 2**32


@dataclass(frozen=True, slots=True)
class Previous:
    """What a new bundle continues from: the version and serial of the one it replaces."""

    version: str
    serial: int | None

    @classmethod
    def read(cls, bundle: Path) -> Previous | None:
        """The bundle at ``bundle`` (a home: its ``current``; or a version folder), or None
        when there is none or it is unreadable (then the serial starts again from the base;
        the runtime would refuse it anyway). Read safely: whatever sits there, this neither
        blocks nor reads more than the manifest's size limit."""
        try:
            pinned = pin(bundle)
        except OSError:
            return None
        try:
            data = orjson.loads(read_regular(pinned.fd, PATH, MANIFEST_LIMIT))
            version = data["version"]
            serial = data.get("dns_serial")
        except (FileProblem, orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return None
        finally:
            pinned.close()
        if not isinstance(version, str):
            return None
        if not (type(serial) is int and 0 <= serial < _SERIAL_MODULUS):  # not bool, 32 bits
            serial = None  # a hand-edited manifest: start again rather than write a bad zone
        return cls(version, serial)


def latest(candidates: Iterable[Previous | None]) -> Previous | None:
    """The candidate with the highest serial (a serial must never go backwards): on a tie,
    the first one given."""
    best: Previous | None = None
    for candidate in candidates:
        if candidate is None or candidate.serial is None:
            continue
        if best is None or best.serial is None or candidate.serial > best.serial:
            best = candidate
    return best


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def content_version(digests: Mapping[str, str]) -> str:
    lines = "".join(f"{path}\0{digests[path]}\n" for path in sorted(digests))
    return sha256(lines.encode())[:VERSION_LENGTH]


def next_serial(previous: Previous | None, version: str) -> int:
    if previous is None or previous.serial is None:
        return BASE_SERIAL
    if previous.version == version:
        return previous.serial
    return max((previous.serial + 1) % _SERIAL_MODULUS, BASE_SERIAL)


def spec_digest(source: bytes, env: str | None, overrides: tuple[str, ...]) -> str:
    """sha256 of the spec's bytes and the options that shaped the bundle (env, --set)."""
    options = orjson.dumps({"env": env, "overrides": list(overrides)}, option=orjson.OPT_SORT_KEYS)
    return sha256(sha256(source).encode() + b"\n" + options)


def generator() -> str:
    return f"meshspec {importlib.metadata.version('meshspec')}"


def indexes(
    mesh: str, version: str, count: int, files: Mapping[str, tuple[str, int]]
) -> dict[str, bytes]:
    """``index/<n>.json`` for every n below ``count`` (an empty one too): each lists the files
    of ``files`` (path -> (sha256, size)) whose path hashes into n."""
    listed: list[dict[str, dict[str, Any]]] = [{} for _ in range(count)]
    for path in sorted(files):
        digest, size = files[path]
        listed[bucket_of(path, count)][path] = {"sha256": digest, "size": size}
    return {
        index_path(bucket): dump_json(
            {
                "format": BUNDLE_FORMAT,
                "mesh": mesh,
                "version": version,
                "bucket": bucket,
                "files": entries,
            }
        )
        for bucket, entries in enumerate(listed)
    }


def manifest(
    mesh: str,
    version: str,
    digest: str,
    serial: int,
    counts: tuple[int, int],
    files: Mapping[str, tuple[str, int]],
) -> Manifest:
    """``counts``: indexes, service buckets; ``files``: the indexes, path -> (sha256, size)."""
    # Every value is built here from validated data: construct without validating again.
    return Manifest.model_construct(
        format=BUNDLE_FORMAT,
        mesh=mesh,
        version=version,
        spec_digest=digest,
        generator=generator(),
        indexes=counts[0],
        buckets=counts[1],
        files={
            path: FileEntry.model_construct(sha256=files[path][0], size=files[path][1])
            for path in sorted(files)
        },
        dns_serial=serial,
    )


def manifest_bytes(value: Manifest) -> bytes:
    return dump_json_indented(value.model_dump(mode="json"))
