"""Publishing into a bundle home: the layout, what -o refuses, crashes at every step, a failure
midway, concurrent publishers, and readers that load while CI publishes."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from compile_support import ir_mesh
from meshspec_runtime.bundle import PolicyDocument
from meshspec_runtime.loader import load_bundle
from support import REPO

from meshspec.compile import compile_spec
from meshspec.compile.ir import ResolvedMesh
from meshspec.compile.pipeline import (
    EmittedBundle,
    build_bundle,
    emit_bundle,
    publish_emitted,
    write_bundle,
)
from meshspec.compile.writer import OutputError

SHOP = REPO / "examples" / "shop.yaml"
DIGEST = "0" * 64


def mesh_with_ttl(ttl: int) -> ResolvedMesh:
    """A mesh whose version differs for each ``ttl``."""
    return dataclasses.replace(ir_mesh(), dns_ttl=ttl)


def tree(folder: Path) -> dict[str, bytes | str]:
    """Every entry below ``folder``: file bytes, or a link's target."""
    found: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_symlink():
            found[relative] = f"-> {os.readlink(path)}"
        elif path.is_file():
            found[relative] = path.read_bytes()
    return found


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real command in a subprocess, so that a hang fails the test instead of blocking it."""
    return subprocess.run(
        [sys.executable, "-m", "meshspec.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def serial_of(home: Path) -> int:
    serial = load_bundle(home).manifest.dns_serial
    assert serial is not None
    return serial


# --- layout ------------------------------------------------------------------------------------


def test_a_home_keeps_current_and_the_version_it_replaced(tmp_path: Path) -> None:
    home = tmp_path / "build" / "shop"
    first = compile_spec(SHOP, home)
    assert json.loads((home / ".meshspec-home").read_bytes()) == {
        "kind": "meshspec-bundle-home",
        "format": 4,
    }
    assert (home / ".lock").is_file()
    assert os.readlink(home / "current") == f"versions/{first.version}"
    assert first.folder == home / "versions" / first.version
    second = compile_spec(SHOP, home, env="prod")
    assert os.readlink(home / "current") == f"versions/{second.version}"
    assert sorted(p.name for p in (home / "versions").iterdir()) == sorted(
        [first.version, second.version]
    )
    third = compile_spec(SHOP, home, env="staging")
    assert sorted(p.name for p in (home / "versions").iterdir()) == sorted(
        [second.version, third.version]
    )
    assert (first.serial, second.serial, third.serial) == (1, 2, 3)
    assert load_bundle(home).version == third.version
    assert load_bundle(home / "versions" / second.version).version == second.version


def test_publishing_the_current_version_again_is_a_no_op(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = compile_spec(SHOP, home)
    inode = (home / "current").lstat().st_ino
    before = tree(home)
    again = compile_spec(SHOP, home)
    assert again.unchanged and (again.version, again.serial) == (first.version, first.serial)
    assert (home / "current").lstat().st_ino == inode  # the link was not even replaced
    assert tree(home) == before


def test_previous_accepts_a_home_or_a_version_folder(tmp_path: Path) -> None:
    compile_spec(SHOP, tmp_path / "old")
    second = compile_spec(SHOP, tmp_path / "old", env="prod")
    from_home = compile_spec(SHOP, tmp_path / "a", env="staging", previous=tmp_path / "old")
    assert from_home.serial == second.serial + 1
    from_folder = compile_spec(SHOP, tmp_path / "b", env="staging", previous=second.folder)
    assert from_folder.serial == second.serial + 1


# --- what -o refuses ---------------------------------------------------------------------------


def test_a_folder_holding_some_manifest_json_is_refused_untouched(tmp_path: Path) -> None:
    webapp = tmp_path / "webapp"
    (webapp / "static").mkdir(parents=True)
    (webapp / "manifest.json").write_text('{"name": "My PWA", "icons": []}')
    (webapp / "static" / "app.js").write_text("console.log(1)")
    before = tree(webapp)
    result = cli("compile", str(SHOP), "-o", str(webapp))
    assert result.returncode == 2
    assert "not a meshspec bundle home" in result.stderr and "Traceback" not in result.stderr
    assert tree(webapp) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["webapp"]


def test_a_bundle_in_the_old_flat_layout_is_refused_with_the_way_on(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    manifest = {"format": 1, "mesh": "shop", "version": "0" * 16, "files": {}, "dns_serial": 7}
    (flat / "manifest.json").write_text(json.dumps(manifest))
    (flat / "policy.json").write_text("{}")
    before = tree(flat)
    with pytest.raises(OutputError, match="old flat layout") as error:
        compile_spec(SHOP, flat)
    assert f"--previous {flat}.flat" in str(error.value)
    assert tree(flat) == before
    # the way on: moved aside, it seeds the serial of the new home
    flat.rename(tmp_path / "flat.flat")
    assert compile_spec(SHOP, flat, previous=tmp_path / "flat.flat").serial == 8


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_special_file_as_manifest_in_the_output_is_refused_at_once(
    tmp_path: Path, kind: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    if kind == "fifo":
        os.mkfifo(out / "manifest.json")
    else:
        (out / "manifest.json").symlink_to("/dev/zero")
    result = cli("compile", str(SHOP), "-o", str(out), timeout=30)
    assert result.returncode == 2, result.stderr
    assert "not a meshspec bundle home" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]


def test_targets_that_cannot_be_a_home(tmp_path: Path) -> None:
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(OutputError, match="not a directory"):
        compile_spec(SHOP, afile)
    home = tmp_path / "home"
    compile_spec(SHOP, home)
    before = tree(home)
    for inside in ("inner", "versions/new", "current/x"):
        with pytest.raises(OutputError, match="is inside the bundle"):
            compile_spec(SHOP, home / inside)
    assert tree(home) == before
    (home / ".meshspec-home").write_text("not our marker")
    with pytest.raises(OutputError, match="not a meshspec home marker"):
        compile_spec(SHOP, home, env="prod")


# --- failures and crashes while publishing -----------------------------------------------------


class Injected(Exception):
    pass


def steps_of_a_publish(home: Path, emitted: EmittedBundle) -> list[str]:
    steps: list[str] = []
    publish_emitted(emitted, home, DIGEST, on_step=steps.append)
    return steps


@pytest.fixture
def two_versions(tmp_path: Path) -> Iterator[tuple[Path, list[EmittedBundle]]]:
    """A home where version A was replaced by B (A kept), and a third version C to publish."""
    home = tmp_path / "home"
    emitted = [emit_bundle(mesh_with_ttl(ttl)) for ttl in (30, 31, 32)]
    for bundle in emitted[:2]:
        publish_emitted(bundle, home, DIGEST)
    yield home, emitted


def test_the_publish_steps_cover_cleanup_every_file_and_the_swap(tmp_path: Path) -> None:
    home = tmp_path / "home"
    emitted = [emit_bundle(mesh_with_ttl(ttl)) for ttl in (30, 31, 32)]
    publish_emitted(emitted[0], home, DIGEST)
    publish_emitted(emitted[1], home, DIGEST)
    steps = steps_of_a_publish(home, emitted[2])
    assert steps[0] == "locked"
    assert f"retired {emitted[0].version}" in steps and f"removed {emitted[0].version}" in steps
    assert steps[-4:] == ["version in place", "link made", "current swapped", "home synced"]
    # every file emitted, an index per bucket (one, in a small mesh) and the manifest
    assert sum(step.startswith("wrote ") for step in steps) == len(emitted[2].files) + 1 + 1
    assert steps[-5] == "files synced" and steps[-6] == "wrote manifest.json"


def other_than(current: str, emitted: list[EmittedBundle]) -> EmittedBundle:
    """The next version after ``current`` in the cycle A, B, C."""
    versions = [bundle.version for bundle in emitted]
    return emitted[(versions.index(current) + 1) % len(emitted)]


def assert_next_publish_continues_and_cleans(home: Path, emitted: list[EmittedBundle]) -> None:
    last = serial_of(home)  # the serial of what is published now
    after = publish_emitted(other_than(load_bundle(home).version, emitted), home, DIGEST)
    assert after.bundle.manifest.dns_serial is not None
    assert after.bundle.manifest.dns_serial > last
    assert serial_of(home) == after.bundle.manifest.dns_serial
    names = [p.name for p in (home / "versions").iterdir()]
    assert not [name for name in names if name.startswith(".")], names
    assert len(names) == 2 and not list(home.glob("current.tmp-*"))


def test_an_exception_at_any_step_leaves_a_loadable_home_and_the_next_publish_cleans(
    two_versions: tuple[Path, list[EmittedBundle]],
) -> None:
    home, emitted = two_versions
    steps = len(steps_of_a_publish(home.parent / "probe", emitted[2]))
    for k in range(steps):
        calls: list[str] = []

        def fail_at_k(step: str, calls: list[str] = calls, k: int = k) -> None:
            calls.append(step)
            if len(calls) == k + 1:
                raise Injected(step)

        before = load_bundle(home).version
        target = other_than(before, emitted)
        with pytest.raises(Injected):
            publish_emitted(target, home, DIGEST, on_step=fail_at_k)
        assert load_bundle(home).version in (before, target.version), calls[-1]
        assert_next_publish_continues_and_cleans(home, emitted)


def _crash_at(home: str, emitted: EmittedBundle, k: int) -> None:
    """In a forked child: publish, and die without any cleanup at step ``k``."""
    count = 0

    def die(step: str) -> None:
        nonlocal count
        count += 1
        if count == k + 1:
            os._exit(17)

    try:
        publish_emitted(emitted, Path(home), DIGEST, on_step=die)
    finally:
        os._exit(0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork to kill a publish midway")
def test_a_publish_killed_at_every_step_leaves_a_loadable_home_and_serials_only_grow(
    two_versions: tuple[Path, list[EmittedBundle]],
) -> None:
    home, emitted = two_versions
    steps = len(steps_of_a_publish(home.parent / "probe", emitted[2]))
    assert steps > 10
    context = multiprocessing.get_context("fork")
    for k in range(steps):
        before, published = load_bundle(home).version, serial_of(home)
        target = other_than(before, emitted)
        child = context.Process(target=_crash_at, args=(str(home), target, k))
        child.start()
        child.join(60)
        assert child.exitcode == 17, f"step {k} was not reached"
        loaded = load_bundle(home)  # whole and verified: the old version or the new one
        assert loaded.version in (before, target.version)
        assert serial_of(home) == (published if loaded.version == before else published + 1)
        assert_next_publish_continues_and_cleans(home, emitted)


def test_short_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The writer hands each file to os.write whole; a write the kernel cuts short is resumed.
    real_write = os.write

    def at_most_7_bytes(fd: int, data: bytes | memoryview) -> int:
        return real_write(fd, bytes(data[:7]))

    bundle = build_bundle(ir_mesh(), DIGEST)
    monkeypatch.setattr(os, "write", at_most_7_bytes)
    folder = write_bundle(bundle, tmp_path / "home")
    monkeypatch.undo()
    assert tree(folder) == bundle.files
    assert load_bundle(tmp_path / "home").version == bundle.version


# --- concurrency -------------------------------------------------------------------------------


def _publish_each(
    home: str, meshes: list[ResolvedMesh], serials: multiprocessing.Queue[int]
) -> None:
    for mesh in meshes:
        result = publish_emitted(emit_bundle(mesh), Path(home), DIGEST)
        assert result.bundle.manifest.dns_serial is not None
        serials.put(result.bundle.manifest.dns_serial)


def test_concurrent_publishers_into_one_home_never_share_a_serial(tmp_path: Path) -> None:
    home = tmp_path / "home"
    context = multiprocessing.get_context("spawn" if not hasattr(os, "fork") else "fork")
    serials: multiprocessing.Queue[int] = context.Queue()
    per_process = 12
    workers = [
        context.Process(
            target=_publish_each,
            args=(str(home), [mesh_with_ttl(100 * w + i) for i in range(per_process)], serials),
        )
        for w in range(1, 4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    got = sorted(serials.get(timeout=10) for _ in range(3 * per_process))
    # every publish is a new version: under the lock each continues from the one before it
    assert got == list(range(1, 3 * per_process + 1))
    assert serial_of(home) == 3 * per_process


def _read_in_a_loop(
    home: str, expected: dict[str, bytes], stop: str, report: multiprocessing.Queue[object]
) -> None:
    loads, errors = 0, []
    versions: set[str] = set()
    while not os.path.exists(stop):
        try:
            bundle = load_bundle(home)
        except Exception as error:  # every failure is what this test counts
            errors.append(f"{type(error).__name__}: {error}")
            continue
        loads += 1
        versions.add(bundle.version)
        manifest_ok = bundle.policy.version == bundle.manifest.version
        if not manifest_ok or expected[bundle.version] != bundle.policy.model_dump_json().encode():
            errors.append(f"version {bundle.version}: policy does not match its version")
    report.put((loads, errors, sorted(versions)))


def test_readers_see_whole_verified_versions_while_publishes_replace_them(tmp_path: Path) -> None:
    home = tmp_path / "home"
    meshes = [ir_mesh(), ir_mesh(retry_attempts=2)]
    emitted = [emit_bundle(mesh) for mesh in meshes]
    # what a correct load parses each version's policy.json into
    expected = {
        bundle.version: PolicyDocument.model_validate_json(
            build_bundle(mesh, DIGEST).files["policy.json"]
        )
        .model_dump_json()
        .encode()
        for bundle, mesh in zip(emitted, meshes, strict=True)
    }
    publish_emitted(emitted[0], home, DIGEST)
    stop = tmp_path / "stop"
    context = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    report: multiprocessing.Queue[object] = context.Queue()
    readers = [
        context.Process(target=_read_in_a_loop, args=(str(home), expected, str(stop), report))
        for _ in range(4)
    ]
    for reader in readers:
        reader.start()
    started = time.monotonic()
    serials = []
    for i in range(200):
        result = publish_emitted(emitted[(i + 1) % 2], home, DIGEST)
        serials.append(result.bundle.manifest.dns_serial)
    stop.touch()
    results = [report.get(timeout=60) for _ in readers]
    for reader in readers:
        reader.join(30)
    assert serials == list(range(2, 202))
    seen: set[str] = set()
    for loads, errors, versions in results:  # type: ignore[misc]
        assert errors == [], errors[:3]
        assert loads > 0 and set(versions) <= set(expected)
        seen.update(versions)
    assert seen == set(expected)  # the readers did load while versions changed
    assert time.monotonic() - started < 120
