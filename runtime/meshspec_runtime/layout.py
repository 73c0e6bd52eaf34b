"""Where a bundle lives on disk: a *bundle home* and the version folders inside it.

```
HOME/.meshspec-home        marker: identifies a meshspec bundle home (small JSON)
HOME/.lock                 flock(2) target of the compiler: publishes into HOME take turns
HOME/versions/<version>/   one complete bundle (manifest.json, policy.json, ...)
HOME/current -> versions/<version>   relative symlink, replaced in one rename per publish
```

A reader opens ``current`` once as a folder descriptor (``pin``) and reads every file relative
to it, so a publish that swaps ``current`` meanwhile cannot mix two versions into one read.
The compiler (``meshspec.compile.writer``) and the runtime (``meshspec_runtime.loader``) share
these names.
"""

from __future__ import annotations

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
SERVICES = "services"
"""The folder of the per-service slices: ``services/<file_name(service)>.json``."""


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


def service_slice_path(service: str) -> str:
    return f"{SERVICES}/{file_name(service)}.json"
