"""Where a bundle lives on disk: a *bundle home* and the version folders inside it.

```
HOME/.meshspec-home        marker: identifies a meshspec bundle home (small JSON)
HOME/.lock                 flock(2) target of the compiler: publishes into HOME take turns
HOME/versions/<version>/   one complete bundle (manifest.json, index/, policy.json, ...)
HOME/current -> versions/<version>   relative symlink, replaced in one rename per publish
```

A reader opens ``current`` once as a folder descriptor (``pin``) and reads every file relative
to it, so a publish that swaps ``current`` meanwhile cannot mix two versions into one read.
The compiler (``meshspec.compile.writer``) and the runtime (``meshspec_runtime.loader``) share
these names.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

HOME_MARKER = ".meshspec-home"
HOME_KIND = "meshspec-bundle-home"
LOCK = ".lock"
CURRENT = "current"
VERSIONS = "versions"
MANIFEST = "manifest.json"

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def is_home(path: Path) -> bool:
    """True when ``path`` holds the home marker as a regular file (no link is followed)."""
    try:
        return stat.S_ISREG(os.lstat(path / HOME_MARKER).st_mode)
    except OSError:
        return False


@dataclass(frozen=True, slots=True)
class Pinned:
    """One version folder, open: ``fd`` keeps naming the folder it opened, whatever
    ``current`` says later. ``home`` is the home it was reached through (None when the path
    named a version folder directly)."""

    path: Path
    fd: int
    home: Path | None

    def close(self) -> None:
        os.close(self.fd)

    def still_current(self) -> bool:
        """False when the home's ``current`` names another folder than the pinned one now."""
        if self.home is None:
            return True
        try:
            now = os.stat(self.home / CURRENT)
        except OSError:
            return False
        pinned = os.fstat(self.fd)
        return (now.st_dev, now.st_ino) == (pinned.st_dev, pinned.st_ino)


def pin(path: Path) -> Pinned:
    """Open the version folder ``path`` names: a home's ``current`` (resolved once, here) or
    ``path`` itself. Raises OSError when it cannot be opened as a folder."""
    if is_home(path):
        target = os.readlink(path / CURRENT)
        fd = os.open(path / CURRENT, _FOLDER)  # follows current: one atomic resolution
        try:
            # the link may have moved between readlink and open; name what was opened if it did
            opened = os.fstat(fd)
            named = os.stat(path / target)
            shown = path / target
            if (named.st_dev, named.st_ino) != (opened.st_dev, opened.st_ino):
                shown = path / CURRENT
        except OSError:
            shown = path / CURRENT
        return Pinned(shown, fd, path)
    return Pinned(path, os.open(path, _FOLDER), None)


_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
INDEX = "index"
"""The folder of the index files: ``index/<n>.json`` lists the files whose path hashes into
``n`` (``index_path``); the manifest lists the index files."""
SERVICES = "services"
"""The folder of the service buckets: ``services/<n>.json`` holds the views of the services
whose name hashes into bucket ``n`` (``service_bucket_path``)."""
SERVICES_PER_BUCKET = 64
"""At most this many services per service bucket, on average. Larger buckets mean fewer files
to create at compile time (creating a file cost up to 0.5 ms of system time on a busy disk, more
than writing its bytes), smaller ones less to read and parse at a service's start-up: at 64, a
bucket of the generated meshes of ``benchmarks/gen_spec.py`` is 48 to 65 KB and start-up about
1.5 ms."""
SERVICES_PER_INDEX = 256
"""At most this many services per index, on average (each lists one or two files per service:
its Consul config entries, plus the buckets): the manifest lists ``services / 256`` indexes and
each index a few hundred files, so what a service reads at start-up barely grows with the
mesh."""
MAX_BUCKETS = 1 << 16


def file_name(name: str) -> str:
    """A file name made from ``name``, safe whatever ``name`` is: anything other than letters,
    digits, ``_``, ``-`` and non-leading dots is percent-encoded byte by byte, so a name can
    neither leave its folder nor hide a file. Names are validated by the spec, yet a bundle
    path must never depend on that."""
    if name and name[0] != "." and _PLAIN.issuperset(name):
        return name
    out = []
    for index, char in enumerate(name):
        if char in _PLAIN and not (index == 0 and char == "."):
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode())
    return "".join(out) or "%00"


def bucket_count(services: int, per_bucket: int = SERVICES_PER_BUCKET) -> int:
    """Buckets for a mesh of ``services`` services, ``per_bucket`` at most on average: the
    smallest power of two that keeps to it (at least 1, at most ``MAX_BUCKETS``)."""
    count = 1
    while count * per_bucket < services and count < MAX_BUCKETS:
        count *= 2
    return count


def index_count(services: int) -> int:
    """Index files for a mesh of ``services`` services."""
    return bucket_count(services, SERVICES_PER_INDEX)


def bucket_of(key: str, buckets: int) -> int:
    """The bucket ``key`` (a service name or a bundle path) hashes into, of ``buckets`` (a
    power of two): the first four bytes of its UTF-8 sha256, masked. Stable across runs and
    machines, unlike ``hash()``."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:4], "big") & (buckets - 1)


def bucket_name(bucket: int) -> str:
    return f"{bucket:04x}"


def index_path(bucket: int) -> str:
    return f"{INDEX}/{bucket_name(bucket)}.json"


def service_bucket_path(bucket: int) -> str:
    return f"{SERVICES}/{bucket_name(bucket)}.json"
