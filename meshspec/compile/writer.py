"""Atomic bundle output: all files or none, the previous bundle untouched on failure.

Files go into a fresh directory beside the target; only when every one is written is the
previous bundle renamed aside, the new one renamed into place, and the old one removed. An
exception (or KeyboardInterrupt) at any point removes the new directory and, if the swap had
begun, puts the previous bundle back. Renames within one directory are atomic on POSIX.
Files are not fsynced one by one: that would cost more than the whole compile of a large mesh,
and a bundle is always reproducible from its spec.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

MARKER = "manifest.json"
"""An existing directory is replaced only when it holds this (it is a bundle) or is empty."""


class OutputError(Exception):
    """The target cannot receive a bundle (not a directory, not a bundle, not writable)."""


def write_atomically(target: Path, files: Iterable[tuple[str, bytes]]) -> None:
    target = target.absolute()
    _check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    try:
        created: set[Path] = {staging}
        for relative, content in files:
            path = staging / relative
            if path.parent not in created:
                path.parent.mkdir(parents=True, exist_ok=True)
                created.add(path.parent)
            path.write_bytes(content)
        staging.chmod(0o755)  # mkdtemp creates it private
        _swap(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _check_replaceable(target: Path) -> None:
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise OutputError(f"{target} exists and is not a directory")
    if target.is_dir() and not (target / MARKER).is_file() and any(target.iterdir()):
        raise OutputError(
            f"{target} is a non-empty directory without {MARKER}: refusing to replace "
            "something that is not a meshspec bundle"
        )


def _swap(staging: Path, target: Path) -> None:
    if not target.exists():
        os.rename(staging, target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rmdir(retired)  # only the unique name is needed
    os.rename(target, retired)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(retired, target)
        raise
    shutil.rmtree(retired, ignore_errors=True)
