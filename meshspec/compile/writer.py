"""Publishing into a bundle home: a new version appears whole, in one rename, or not at all.

Layout (``meshspec_runtime.layout``): ``HOME/.meshspec-home`` (marker), ``HOME/.lock``,
``HOME/versions/<version>/`` (complete bundles), ``HOME/current -> versions/<version>``.

A publish, under an exclusive ``flock`` of ``HOME/.lock`` from before the previous serial is
read until after the swap (concurrent compiles into one home take turns):

1. leftovers are removed: every version folder but the one ``current`` names (so the version
   replaced by the last publish is kept until now, for readers that pinned it), temporary
   folders and links of interrupted runs;
2. the new version is written into ``versions/.tmp-<name>-<pid>``, manifest last, made
   durable (``syncfs`` on Linux, else an fsync per file; then an fsync per folder), and renamed
   to ``versions/<name>`` (fsync of ``versions``);
3. a symlink ``current.tmp-<pid> -> versions/<name>`` is made and renamed onto ``current``
   (``os.replace``: readers see the old or the new link, never none), then ``HOME`` is fsynced.

Killed at any point, the home still holds a complete ``current`` (the old or the new one);
what the interrupted run left is removed by the next publish. ``on_step`` is called between
the steps (the crash-injection tests kill the process there).

A large mesh writes tens of thousands of files, so the per-file work is kept to the system calls
that matter: each folder is created and opened once, and each file is created relative to its
folder's descriptor and written with one ``os.write``.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import shutil
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import cast

import orjson
from meshspec_runtime.bundle import BUNDLE_FORMAT
from meshspec_runtime.layout import (
    CURRENT,
    HOME_KIND,
    HOME_MARKER,
    LOCK,
    MANIFEST,
    VERSIONS,
    is_home,
)
from meshspec_runtime.safefile import FileProblem, read_regular

StepHook = Callable[[str], None]
TEMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
LINK_TEMP_PREFIX = f"{CURRENT}.tmp-"
MARKER_TEMP_PREFIX = f"{HOME_MARKER}.tmp-"
_MARKER_LIMIT = 4096
_PEEK_LIMIT = 1024 * 1024
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class OutputError(Exception):
    """The target cannot receive a bundle (not a folder, not a bundle home, not writable)."""


def _ignore_step(step: str) -> None:
    pass


def marker_bytes() -> bytes:
    return orjson.dumps({"kind": HOME_KIND, "format": BUNDLE_FORMAT}) + b"\n"


class BundleHome:
    """A bundle home, locked for one publish. Use ``BundleHome.locked(path)``."""

    def __init__(self, path: Path, on_step: StepHook) -> None:
        self.path = path
        self.versions = path / VERSIONS
        self.on_step = on_step

    @classmethod
    @contextlib.contextmanager
    def locked(cls, path: Path, on_step: StepHook | None = None) -> Iterator[BundleHome]:
        """Check ``path`` can be a home (nothing is created otherwise), make it one if it is
        new, and hold its lock until the block ends."""
        path = path.absolute()
        check_target(path)
        path.mkdir(parents=True, exist_ok=True)
        try:
            lock = os.open(
                path / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644
            )
        except OSError as error:
            raise OutputError(f"{path / LOCK}: cannot open the lock: {error.strerror}") from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            check_target(path)  # again, now that no other publisher can change it
            home = cls(path, on_step or _ignore_step)
            home._make_home()
            home.on_step("locked")
            yield home
        finally:
            os.close(lock)  # releases the lock

    def _make_home(self) -> None:
        if not is_home(self.path):
            temp = self.path / f"{MARKER_TEMP_PREFIX}{os.getpid()}"
            _write_file(temp, marker_bytes())
            os.replace(temp, self.path / HOME_MARKER)
        self.versions.mkdir(exist_ok=True)
        _fsync_folder(self.path)

    def current_name(self) -> str | None:
        """The version folder ``current`` names, or None (no link, or not one of ours)."""
        try:
            target = os.readlink(self.path / CURRENT)
        except OSError:
            return None
        folder, _, name = target.partition("/")
        if folder != VERSIONS or not name or "/" in name or name.startswith("."):
            return None
        return name

    def version_folders(self) -> list[Path]:
        """Every folder in ``versions`` (complete, temporary or half-deleted)."""
        try:
            return sorted(
                Path(entry.path)
                for entry in os.scandir(self.versions)
                if entry.is_dir(follow_symlinks=False)
            )
        except FileNotFoundError:
            return []

    def remove_leftovers(self) -> None:
        """Everything but ``current``'s folder: older versions, interrupted runs' folders and
        links. Each folder is first renamed to a ``.trash-`` name, so a half-deleted one is
        never mistaken for a version."""
        keep = self.current_name()
        for entry in os.scandir(self.path):
            link = entry.name.startswith(LINK_TEMP_PREFIX) and entry.is_symlink()
            if link or entry.name.startswith(MARKER_TEMP_PREFIX):
                os.unlink(entry.path)
                self.on_step(f"removed {entry.name}")
        for entry in os.scandir(self.versions):
            if entry.name == keep:
                continue
            if not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.path)
                continue
            doomed = entry.path
            if not entry.name.startswith(TRASH_PREFIX):
                doomed = os.path.join(self.versions, f"{TRASH_PREFIX}{entry.name}-{os.getpid()}")
                os.rename(entry.path, doomed)
                self.on_step(f"retired {entry.name}")
            shutil.rmtree(doomed)
            self.on_step(f"removed {entry.name}")
        _fsync_folder(self.versions)

    def free_name(self, version: str) -> str:
        """``version``, or ``version-N`` when a folder of that name is current (a version
        republished with other provenance must not overwrite the folder readers use)."""
        name, suffix = version, 1
        while (self.versions / name).exists() or os.path.lexists(self.versions / name):
            name = f"{version}-{suffix}"
            suffix += 1
        return name

    def publish(self, name: str, files: Iterable[tuple[str, bytes]]) -> Path:
        """Write ``files`` as ``versions/<name>`` and make it current. Returns its folder."""
        staging = self.versions / f"{TEMP_PREFIX}{name}-{os.getpid()}"
        os.mkdir(staging, 0o755)
        self.on_step("staging created")
        _write_files(staging, files, self.on_step)
        self.on_step("files synced")
        final = self.versions / name
        os.rename(staging, final)
        _fsync_folder(self.versions)
        self.on_step("version in place")
        link = self.path / f"{LINK_TEMP_PREFIX}{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link)
        os.symlink(f"{VERSIONS}/{name}", link)
        self.on_step("link made")
        os.replace(link, self.path / CURRENT)
        self.on_step("current swapped")
        _fsync_folder(self.path)
        self.on_step("home synced")
        return final


def check_target(target: Path) -> None:
    """Refuse (OutputError, nothing touched) a target that is not, and cannot become, a home."""
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        info = None
    except OSError as error:
        raise OutputError(f"{target}: {error.strerror}") from None
    if info is not None and not stat.S_ISDIR(info.st_mode):
        raise OutputError(f"{target} exists and is not a directory")
    for parent in target.parents:  # a folder inside a bundle or home would break it
        if is_home(parent) or _is_regular(parent / MANIFEST):
            raise OutputError(
                f"{target} is inside the bundle {parent}: writing there would break it"
            )
    if info is None or is_home(target):
        if info is not None:
            _check_marker(target)
        return
    entries = {entry.name for entry in os.scandir(target)}
    if all(name == LOCK or name.startswith(MARKER_TEMP_PREFIX) for name in entries):
        return  # empty, or a home being created by another publisher right now
    if MANIFEST in entries and _is_flat_bundle(target / MANIFEST):
        raise OutputError(
            f"{target} holds a bundle in the old flat layout (manifest.json at its top); "
            f"bundles are now published into a bundle home ({target}/current -> "
            f"versions/<version>). Move it aside and compile again, continuing its DNS "
            f"serial: mv {target} {target}.flat && meshspec compile SPEC -o {target} "
            f"--previous {target}.flat"
        )
    raise OutputError(
        f"{target} is a non-empty directory that is not a meshspec bundle home (no "
        f"{HOME_MARKER}): refusing to replace something that is not a meshspec bundle"
    )


def _check_marker(home: Path) -> None:
    try:
        fd = os.open(home, _FOLDER)
        try:
            raw = read_regular(fd, HOME_MARKER, _MARKER_LIMIT)
        finally:
            os.close(fd)
        data = orjson.loads(raw)
    except (OSError, FileProblem, orjson.JSONDecodeError):
        data = None
    if not (isinstance(data, dict) and data.get("kind") == HOME_KIND):
        raise OutputError(
            f"{home / HOME_MARKER} is not a meshspec home marker: refusing to write into {home}"
        )


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _is_flat_bundle(manifest: Path) -> bool:
    """Does ``manifest`` read as a meshspec manifest? Read safely: it may be anything."""
    try:
        fd = os.open(manifest.parent, _FOLDER)
        try:
            data = orjson.loads(read_regular(fd, manifest.name, _PEEK_LIMIT))
        finally:
            os.close(fd)
    except (OSError, FileProblem, orjson.JSONDecodeError):
        return False
    return isinstance(data, dict) and {"format", "version", "files"} <= data.keys()


def _find_syncfs() -> Callable[[int], int] | None:
    """Linux's ``syncfs(2)``: one call makes every file written durable, where an ``fsync``
    per file costs a journal commit each (16,000 files of a 5,000-service mesh: seconds)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return cast("Callable[[int], int]", function)


_syncfs = _find_syncfs()


def _write_files(staging: Path, files: Iterable[tuple[str, bytes]], on_step: StepHook) -> None:
    """Write ``files`` (POSIX relative paths, already checked safe) below ``staging``; make them
    durable (one ``syncfs`` of the file system where there is one, else an ``fsync`` per file),
    then fsync every folder (deepest first, so each entry is durable)."""
    folders: dict[str, int] = {"": os.open(staging, _FOLDER)}  # relative folder -> descriptor
    try:
        for relative, content in files:
            folder, _, name = relative.rpartition("/")
            folder_fd = folders.get(folder)
            if folder_fd is None:
                path = os.path.join(staging, folder) if folder else str(staging)
                os.makedirs(path, exist_ok=True)
                folder_fd = folders[folder] = os.open(path, _FOLDER)
                _open_ancestors(staging, folder, folders)
            fd = os.open(name, _CREATE, 0o644, dir_fd=folder_fd)
            try:
                _write_all(fd, content)
                if _syncfs is None:
                    os.fsync(fd)
            finally:
                os.close(fd)
            on_step(f"wrote {relative}")
        if _syncfs is not None and _syncfs(folders[""]) != 0:
            raise OSError(ctypes.get_errno(), "syncfs failed", str(staging))
        for folder in sorted(folders, key=lambda f: -f.count("/") - (f != "")):
            os.fsync(folders[folder])
    finally:
        for descriptor in folders.values():
            os.close(descriptor)


def _open_ancestors(staging: Path, folder: str, folders: dict[str, int]) -> None:
    """Hold a descriptor of each folder above ``folder`` too: each is fsynced at the end."""
    while folder:
        folder = folder.rpartition("/")[0]
        if folder in folders:
            return
        folders[folder] = os.open(os.path.join(staging, folder) if folder else staging, _FOLDER)


def _write_file(path: Path, content: bytes) -> None:
    fd = os.open(path, _CREATE | os.O_NOFOLLOW, 0o644)
    try:
        _write_all(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, content: bytes) -> None:
    written = os.write(fd, content)
    if written < len(content):  # a regular file takes it all at once, barring signals
        view = memoryview(content)
        while written < len(content):
            written += os.write(fd, view[written:])


def _fsync_folder(path: Path) -> None:
    fd = os.open(path, _FOLDER)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
