"""Read a file of a bundle in bounded time and memory, whatever sits at its name.

Each file is opened once, relative to an open folder, with ``O_NOFOLLOW`` (a link is refused,
never followed: the bundle is only what its folder holds) and ``O_NONBLOCK`` (opening a FIFO
does not wait for a writer), then checked with ``fstat`` on the opened descriptor: anything
but a regular file is refused before a byte is read, and so is a file larger than allowed.
The bytes returned are the only ones read, so the caller hashes and parses the same bytes.
"""

from __future__ import annotations

import os
import stat

_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_FOLDER = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC
_CHUNK = 1 << 20


class FileProblem(Exception):
    """Why a file could not be read; the message completes ``<file>: ``."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_regular(
    folder_fd: int, name: str, limit: int, *, expected_size: int | None = None
) -> bytes:
    """The bytes of the regular file ``name`` in the folder ``folder_fd``.

    Refuses (FileProblem) a link, anything but a regular file, a file above ``limit`` bytes
    or of another size than ``expected_size``, without reading it. A file that grows while
    it is read stops being read one chunk past the allowed size.
    """
    try:
        fd = os.open(name, _READ, dir_fd=folder_fd)
    except FileNotFoundError:
        raise FileProblem("missing") from None
    except OSError as error:
        if error.errno == getattr(os, "ELOOP", 40):
            raise FileProblem("a symbolic link, not part of a bundle") from None
        raise FileProblem(f"unreadable: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileProblem(f"{_kind(info.st_mode)}, not a regular file")
        allowed = limit if expected_size is None else min(limit, expected_size)
        if expected_size is not None and info.st_size != expected_size:
            raise FileProblem(
                f"{info.st_size} bytes, but the manifest says {expected_size}: "
                "the file was changed after compilation"
            )
        if info.st_size > limit:
            raise FileProblem(f"{info.st_size} bytes, above the limit of {limit}")
        data = _read_at_most(fd, allowed + 1, info.st_size)
    except OSError as error:
        raise FileProblem(f"unreadable: {error.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > allowed:
        raise FileProblem(f"grew beyond {allowed} bytes while it was read")
    return data


def _read_at_most(fd: int, most: int, size_hint: int) -> bytes:
    first = os.read(fd, min(most, max(size_hint, 0) + 1))  # a regular file: usually all at once
    if not first or len(first) >= most:
        return first
    chunks = [first]
    total = len(first)
    while total < most:
        chunk = os.read(fd, min(_CHUNK, most - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


class Folders:
    """Open descriptors of the folders below a pinned root, each opened once, component by
    component with ``O_NOFOLLOW``: a linked folder inside the bundle is refused, not followed.
    Use as a context manager; the root descriptor stays the caller's."""

    def __init__(self, root_fd: int) -> None:
        self._fds: dict[str, int] = {"": root_fd}
        self._owned: list[int] = []

    def __enter__(self) -> Folders:
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self._owned:
            os.close(fd)
        self._owned.clear()

    def folder(self, relative: str) -> int:
        """The descriptor of the folder ``relative`` (``a/b``; ``""`` is the root)."""
        fd = self._fds.get(relative)
        if fd is not None:
            return fd
        parent, _, name = relative.rpartition("/")
        parent_fd = self.folder(parent)
        try:
            fd = os.open(name, _FOLDER, dir_fd=parent_fd)
        except FileNotFoundError:
            raise FileProblem(f"missing folder {relative}") from None
        except OSError as error:
            if error.errno in (getattr(os, "ELOOP", 40), getattr(os, "ENOTDIR", 20)):
                raise FileProblem(f"{relative} is a symbolic link or not a folder") from None
            raise FileProblem(f"unreadable folder {relative}: {error.strerror}") from None
        self._owned.append(fd)
        self._fds[relative] = fd
        return fd

    def read(self, relative: str, limit: int, *, expected_size: int | None = None) -> bytes:
        folder, _, name = relative.rpartition("/")
        return read_regular(self.folder(folder), name, limit, expected_size=expected_size)
