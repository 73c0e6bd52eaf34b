"""The bundle's version, its SOA serial, and ``manifest.json``.

- version: the first 16 hex digits of sha256 over the sorted ``path NUL sha256(content)`` lines
  of every file as emitted, i.e. with the version and serial placeholders still in place
  (``meshspec.compile.stamp``). The same resolved mesh gives the same version; any change to
  what a file says gives a new one; the version never depends on itself or on the serial.
- serial: a content hash cannot increase, so the serial continues from the previous bundle:
  its serial when its version is the same, its serial + 1 (RFC 1982 arithmetic) when the
  version changed, ``BASE_SERIAL`` when there is no previous bundle.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson
from meshspec_runtime.bundle import BUNDLE_FORMAT, Manifest

from meshspec.compile.jsonfile import dump_json

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
        """The previous bundle at ``bundle``, or None when there is none or it is unreadable
        (then the serial starts again from the base; the runtime would refuse it anyway)."""
        try:
            data = orjson.loads((bundle / PATH).read_bytes())
            version = data["version"]
            serial = data.get("dns_serial")
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return None
        if not isinstance(version, str):
            return None
        if not (type(serial) is int and 0 <= serial < _SERIAL_MODULUS):  # not bool, 32 bits
            serial = None  # a hand-edited manifest: start again rather than write a bad zone
        return cls(version, serial)


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


def manifest(
    mesh: str, version: str, digest: str, serial: int, files: Mapping[str, str]
) -> Manifest:
    # Every value is built here from validated data: construct without validating again.
    return Manifest.model_construct(
        format=BUNDLE_FORMAT,
        mesh=mesh,
        version=version,
        spec_digest=digest,
        generator=generator(),
        files=dict(sorted(files.items())),
        dns_serial=serial,
    )


def manifest_bytes(value: Manifest) -> bytes:
    return dump_json(value.model_dump(mode="json"))
