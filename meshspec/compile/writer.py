"""Atomic bundle output: all files or none, the previous bundle untouched on failure.

Files go into a fresh directory beside the target; only when every one is written is the
previous bundle renamed aside, the new one renamed into place, and the old one removed. An
exception (or KeyboardInterrupt) at any point removes the new directory and, if the swap had
begun, puts the previous bundle back. Renames within one directory are atomic on POSIX.
Files are not fsynced one by one: that would cost more than the whole compile of a large mesh,
and a bundle is always reproducible from its spec.

A large mesh writes tens of thousands of files, so the per-file work is kept to the system calls
that matter: each folder is created and opened once, and each file is created relative to its
folder's descriptor (no path walk from the root, no Path objects) and written with one
``os.write`` (no buffered file object, whose creation also costs ``fstat``, ``ioctl`` and
``lseek`` calls).
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
        _write_files(staging, files)
        staging.chmod(0o755)  # mkdtemp creates it private
        _swap(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
_FOLDER = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_BY_FOLDER_FD = os.open in os.supports_dir_fd
"""Without ``openat`` (Windows), files are opened by their full path instead."""


def _write_files(staging: Path, files: Iterable[tuple[str, bytes]]) -> None:
    """Write ``files`` (POSIX relative paths, already checked safe) below ``staging``."""
    folders: dict[str, int | None] = {}  # relative folder -> an open descriptor of it
    try:
        for relative, content in files:
            folder, _, name = relative.rpartition("/")
            if folder not in folders:
                path = os.path.join(staging, folder) if folder else str(staging)
                os.makedirs(path, exist_ok=True)
                folders[folder] = os.open(path, _FOLDER) if _BY_FOLDER_FD else None
            folder_fd = folders[folder]
            if folder_fd is not None:
                fd = os.open(name, _CREATE, 0o666, dir_fd=folder_fd)
            else:
                fd = os.open(os.path.join(staging, relative), _CREATE, 0o666)
            try:
                _write_all(fd, content)
            finally:
                os.close(fd)
    finally:
        for descriptor in folders.values():
            if descriptor is not None:
                os.close(descriptor)


def _write_all(fd: int, content: bytes) -> None:
    written = os.write(fd, content)
    if written < len(content):  # a regular file takes it all at once, barring signals
        view = memoryview(content)
        while written < len(content):
            written += os.write(fd, view[written:])


def _check_replaceable(target: Path) -> None:
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise OutputError(f"{target} exists and is not a directory")
    for parent in target.parents:  # a folder inside a bundle is a file it does not list
        if (parent / MARKER).is_file():
            raise OutputError(
                f"{target} is inside the bundle {parent}: writing there would break it"
            )
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
