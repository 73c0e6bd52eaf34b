"""Atomic output: a compile that fails at any point leaves the previous bundle as it was."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from compile_support import ir_mesh
from meshspec_runtime.loader import load_bundle

from meshspec.compile.ir import ResolvedMesh
from meshspec.compile.pipeline import build_bundle, write_bundle
from meshspec.compile.writer import OutputError, write_atomically


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


class Injected(Exception):
    pass


def failing_after(
    files: dict[str, bytes], count: int, error: BaseException
) -> Iterator[tuple[str, bytes]]:
    """The files of a bundle, failing once ``count`` of them were handed to the writer."""
    for index, item in enumerate(sorted(files.items())):
        if index == count:
            raise error
        yield item


@pytest.fixture
def previous(tmp_path: Path) -> Path:
    out = tmp_path / "out" / "bundle"
    write_bundle(build_bundle(ir_mesh(), "0" * 64), out)
    return out


@pytest.mark.parametrize("count", [0, 1, 5, 11])
@pytest.mark.parametrize("error", [Injected("disk full"), KeyboardInterrupt()])
def test_a_failure_midway_leaves_the_previous_bundle_intact(
    previous: Path, count: int, error: BaseException
) -> None:
    before = snapshot(previous)
    new = build_bundle(ir_mesh(retry_attempts=2), "1" * 64)
    assert len(new.files) == 13
    with pytest.raises(type(error)):
        write_atomically(previous, failing_after(new.files, count, error))
    assert snapshot(previous) == before
    assert load_bundle(previous).version != new.version
    assert [p.name for p in previous.parent.iterdir()] == ["bundle"]  # no temp dirs behind


def test_a_failing_emitter_writes_nothing(previous: Path) -> None:
    before = snapshot(previous)

    def broken(mesh: ResolvedMesh) -> dict[str, bytes]:
        raise Injected("template bug")

    with pytest.raises(Injected):
        write_bundle(build_bundle(ir_mesh(2), "0" * 64, emitters=[broken]), previous)
    assert snapshot(previous) == before


def test_a_successful_compile_replaces_the_whole_bundle(previous: Path) -> None:
    stray = previous / "consul" / "services" / "removed-service.json"
    stray.write_text("{}")
    new = build_bundle(ir_mesh(retry_attempts=2), "0" * 64)
    write_bundle(new, previous)
    assert snapshot(previous) == new.files  # the stray file went with the old bundle
    assert [p.name for p in previous.parent.iterdir()] == ["bundle"]


def test_a_folder_that_is_not_a_bundle_is_never_replaced(tmp_path: Path) -> None:
    precious = tmp_path / "src"
    precious.mkdir()
    (precious / "main.py").write_text("print('hi')")
    with pytest.raises(OutputError, match="not a meshspec bundle"):
        write_bundle(build_bundle(ir_mesh(), "0" * 64), precious)
    assert snapshot(precious) == {"main.py": b"print('hi')"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_an_empty_folder_and_a_file_as_target(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    write_bundle(build_bundle(ir_mesh(), "0" * 64), empty)
    assert load_bundle(empty).manifest.mesh == "shop"
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(OutputError, match="not a directory"):
        write_bundle(build_bundle(ir_mesh(), "0" * 64), afile)


def test_short_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The writer hands each file to os.write whole; a write the kernel cuts short is resumed.
    real_write = os.write

    def at_most_7_bytes(fd: int, data: bytes | memoryview) -> int:
        return real_write(fd, bytes(data[:7]))

    bundle = build_bundle(ir_mesh(), "0" * 64)
    monkeypatch.setattr(os, "write", at_most_7_bytes)
    write_bundle(bundle, tmp_path / "bundle")
    monkeypatch.undo()
    assert snapshot(tmp_path / "bundle") == bundle.files
    assert load_bundle(tmp_path / "bundle").version == bundle.version


@pytest.mark.parametrize("inside", ["inner", "consul/new", "a/b/c"])
def test_a_target_inside_a_bundle_is_refused_and_the_bundle_stays_loadable(
    previous: Path, inside: str
) -> None:
    before = snapshot(previous)
    with pytest.raises(OutputError, match="is inside the bundle"):
        write_bundle(build_bundle(ir_mesh(), "0" * 64), previous / inside)
    assert snapshot(previous) == before
    load_bundle(previous)
