"""The loader against what can sit at a bundle's names, against files swapped while it reads,
and against publishes that delete the version it pinned; and load_service's slices."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from compile_support import ir_mesh, listing, relist, wide_mesh
from meshspec_runtime import safefile
from meshspec_runtime.layout import (
    SERVICES_PER_BUCKET,
    SERVICES_PER_INDEX,
    bucket_count,
    bucket_of,
    index_count,
    index_path,
    service_bucket_path,
)
from meshspec_runtime.loader import (
    BundleError,
    ServiceNotInBundleError,
    load_bundle,
    load_bundle_files,
    load_service,
)
from support import REPO

from meshspec.compile.ir import ResolvedMesh
from meshspec.compile.pipeline import build_bundle, emit_bundle, publish_emitted

WriteBundle = Callable[[ResolvedMesh, str], Path]
SHOP = REPO / "examples" / "shop.yaml"


@pytest.fixture
def bundle(write_ir_bundle: WriteBundle, mesh: ResolvedMesh) -> Path:
    """A version folder, as the compiler published it."""
    return write_ir_bundle(mesh, "home")


def replace_with_special(path: Path, kind: str) -> None:
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")


CHECKOUT_BUCKET = service_bucket_path(bucket_of("checkout", 1))  # a small mesh: one bucket


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
@pytest.mark.parametrize(
    "victim", ["manifest.json", "index/0000.json", "policy.json", CHECKOUT_BUCKET]
)
def test_a_special_file_is_refused_at_once_by_name(bundle: Path, kind: str, victim: str) -> None:
    replace_with_special(bundle / victim, kind)
    started = time.monotonic()
    with pytest.raises(BundleError) as error:
        load_bundle(bundle)
    assert error.value.file == victim
    expected = "a FIFO, not a regular file" if kind == "fifo" else "a symbolic link"
    assert expected in error.value.problem
    if victim != "policy.json":
        with pytest.raises(BundleError, match=expected):
            load_service(bundle, "checkout")
    assert time.monotonic() - started < 5


def test_a_home_whose_current_manifest_is_a_fifo(tmp_path: Path) -> None:
    home = tmp_path / "home"
    publish_emitted(emit_bundle(ir_mesh()), home, "0" * 64)
    replace_with_special(home / "current" / "manifest.json", "fifo")
    with pytest.raises(BundleError, match="a FIFO") as error:
        load_bundle(home)
    assert error.value.file == "manifest.json"


def test_diff_refuses_a_fifo_manifest_without_hanging(bundle: Path) -> None:
    replace_with_special(bundle / "manifest.json", "fifo")
    result = subprocess.run(
        [sys.executable, "-m", "meshspec.cli", "diff", str(bundle), str(SHOP)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "manifest.json: a FIFO" in result.stderr and "Traceback" not in result.stderr


def test_a_huge_listed_file_is_refused_without_being_read(
    bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = bundle / "prometheus" / "rules.yml"
    with rules.open("r+b") as stream:  # sparse: 1.5 GiB that take no disk
        stream.truncate(3 * 2**29)
    read_sizes: list[int] = []
    real_read = os.read

    def counting_read(fd: int, size: int) -> bytes:
        read_sizes.append(size)
        return real_read(fd, size)

    monkeypatch.setattr(safefile.os, "read", counting_read)
    with pytest.raises(BundleError, match="bytes, but the manifest says") as error:
        load_bundle(bundle)
    assert error.value.file == "prometheus/rules.yml"
    assert sum(read_sizes) < 50 * 2**20  # the other files only
    # an index that claims the size is not believed past the limit either
    claimed = {**listing(bundle)["prometheus/rules.yml"], "size": 3 * 2**29}
    relist(bundle, "prometheus/rules.yml", entry=claimed)
    with pytest.raises(BundleError, match="above the limit") as error:
        load_bundle(bundle)
    assert error.value.file == "prometheus/rules.yml"


def test_a_huge_manifest_is_refused_without_being_read(bundle: Path) -> None:
    with (bundle / "manifest.json").open("r+b") as stream:
        stream.truncate(3 * 2**29)
    with pytest.raises(BundleError, match="above the limit") as error:
        load_bundle(bundle)
    assert error.value.file == "manifest.json"


def test_the_bytes_parsed_are_the_bytes_verified(
    bundle: Path, mesh: ResolvedMesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A writer swaps policy.json for another (valid) document right after the loader read it:
    # the loader must parse what it hashed, not read the file again.
    original = load_bundle(bundle).policy
    other = build_bundle(ir_mesh(retry_attempts=2), "0" * 64).files["policy.json"]
    real_read = safefile.Folders.read

    def read_then_swap(self: safefile.Folders, relative: str, limit: int, **kw: int) -> bytes:
        data = real_read(self, relative, limit, **kw)  # type: ignore[arg-type]
        if relative == "policy.json":
            (bundle / "policy.json").write_bytes(other)
        return data

    monkeypatch.setattr(safefile.Folders, "read", read_then_swap)
    assert load_bundle(bundle).policy == original
    monkeypatch.undo()
    with pytest.raises(BundleError, match=r"policy\.json"):  # the swap did happen
        load_bundle(bundle)


def test_a_pinned_version_deleted_mid_read_is_read_again_from_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    versions = [emit_bundle(dataclasses.replace(ir_mesh(), dns_ttl=ttl)) for ttl in (30, 31, 32)]
    publish_emitted(versions[0], home, "0" * 64)
    real_read = safefile.Folders.read
    publishes = iter(versions[1:])

    def publish_twice_midway(self: safefile.Folders, relative: str, limit: int, **kw: int) -> bytes:
        if relative == "policy.json":
            for emitted in publishes:  # the second publish deletes the version being read
                publish_emitted(emitted, home, "0" * 64)
        return real_read(self, relative, limit, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(safefile.Folders, "read", publish_twice_midway)
    assert load_bundle(home).version == versions[2].version


def test_a_version_folder_read_directly_is_not_retried(bundle: Path) -> None:
    (bundle / "policy.json").unlink()
    with pytest.raises(BundleError, match="listed but missing"):
        load_bundle(bundle)


def test_a_home_with_nothing_published(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".meshspec-home").write_text('{"kind": "meshspec-bundle-home", "format": 2}')
    with pytest.raises(BundleError, match="no version was published here yet") as error:
        load_bundle(home)
    assert error.value.file == "current"


def test_a_linked_folder_inside_a_listed_path_is_not_followed(bundle: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved-consul"
    (bundle / "consul").rename(moved)
    (bundle / "consul").symlink_to(moved)  # every listed file still reads the same bytes
    with pytest.raises(BundleError, match="symbolic link") as error:
        load_bundle(bundle)
    assert error.value.file.startswith("consul/")


def test_load_bundle_files_returns_the_verified_bytes(bundle: Path) -> None:
    loaded, files = load_bundle_files(bundle)
    on_disk = {
        p.relative_to(bundle).as_posix(): p.read_bytes() for p in bundle.rglob("*") if p.is_file()
    }
    assert files == on_disk
    assert set(files) == {*loaded.manifest.files, *listing(bundle), "manifest.json"}


# --- load_service --------------------------------------------------------------------------------


def test_a_service_slice_is_its_view_of_the_policy_document(bundle: Path) -> None:
    whole = load_bundle(bundle)
    for name in whole.policy.services:
        one = load_service(bundle, name)
        assert one.service == whole.policy.service(name)
        assert (one.version, one.mesh) == (whole.version, whole.manifest.mesh)
    checkout = load_service(bundle, "checkout").service
    assert checkout.upstreams["payments"].policy.retry is not None
    assert checkout.upstreams["payments"].policy.retry.attempts == 3


def test_load_service_reads_only_the_manifest_an_index_and_its_bucket(
    bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (bundle / "policy.json").write_bytes(b"tampered")  # not read by load_service
    read: list[str] = []
    real_read = safefile.Folders.read

    def recording(self: safefile.Folders, relative: str, limit: int, **kw: int) -> bytes:
        read.append(relative)
        return real_read(self, relative, limit, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(safefile.Folders, "read", recording)
    assert load_service(bundle, "payments").service.port == 9090
    assert read == ["manifest.json", "index/0000.json", service_bucket_path(0)]


def test_an_unknown_service_is_named_with_close_matches(bundle: Path) -> None:
    with pytest.raises(ServiceNotInBundleError, match="did you mean 'checkout'") as error:
        load_service(bundle, "chekout")
    assert "no service 'chekout' in mesh 'shop'" in str(error.value)
    with pytest.raises(BundleError, match="no service 'zzz'") as plain:
        load_service(bundle, "zzz")
    assert "did you mean" not in str(plain.value)


def test_a_tampered_or_foreign_bucket_is_refused(bundle: Path) -> None:
    piece = bundle / CHECKOUT_BUCKET
    original = piece.read_bytes()
    piece.write_bytes(original.replace(b"8080", b"8081"))
    with pytest.raises(BundleError, match="changed after compilation") as error:
        load_service(bundle, "checkout")
    assert error.value.file == CHECKOUT_BUCKET
    # consistent digests, but the bucket of another version: a bundle stitched together
    data = json.loads(original)
    data["version"] = "0" * 16
    relist(bundle, CHECKOUT_BUCKET, json.dumps(data).encode())
    with pytest.raises(BundleError, match="belongs to mesh 'shop' version '0000000000000000'"):
        load_service(bundle, "checkout")


def test_a_bucket_holding_a_service_under_another_name_is_refused(bundle: Path) -> None:
    data = json.loads((bundle / CHECKOUT_BUCKET).read_bytes())
    data["services"]["checkout"] = data["services"]["payments"]
    relist(bundle, CHECKOUT_BUCKET, json.dumps(data).encode())
    with pytest.raises(BundleError, match="holds service 'payments' under the name 'checkout'"):
        load_service(bundle, "checkout")


def test_a_bucket_with_a_policy_out_of_bounds_is_refused(bundle: Path) -> None:
    data = json.loads((bundle / CHECKOUT_BUCKET).read_bytes())
    used = data["services"]["checkout"]["upstreams"]["payments"]["policy"]
    data["policies"][used]["timeout"] = -1
    relist(bundle, CHECKOUT_BUCKET, json.dumps(data).encode())
    with pytest.raises(BundleError, match=rf"policies\.{used}\.timeout"):
        load_service(bundle, "checkout")
    load_service(bundle, "inventory")  # what another service does not use is not validated


@pytest.mark.parametrize("missing", ["endpoints", "policies"])
def test_a_bucket_reference_that_does_not_resolve_is_named(bundle: Path, missing: str) -> None:
    data = json.loads((bundle / CHECKOUT_BUCKET).read_bytes())
    ref = data["services"]["checkout"]["upstreams"]["payments"]
    del data[missing][ref["service"] if missing == "endpoints" else ref["policy"]]
    relist(bundle, CHECKOUT_BUCKET, json.dumps(data).encode())
    with pytest.raises(BundleError, match=r"services\.checkout\.upstreams\.payments\.") as error:
        load_service(bundle, "checkout")
    assert f"in {missing}" in error.value.problem


@pytest.mark.parametrize("content", [b"[]", b"{not json", b'{"services": {}}'])
def test_a_broken_bucket_is_named(bundle: Path, content: bytes) -> None:
    relist(bundle, CHECKOUT_BUCKET, content)
    with pytest.raises(BundleError, match="not a valid service bucket") as error:
        load_service(bundle, "checkout")
    assert error.value.file == CHECKOUT_BUCKET


# --- many buckets ----------------------------------------------------------------------------


def test_bucket_counts_keep_to_their_size_in_powers_of_two() -> None:
    assert [bucket_count(n) for n in (0, 1, SERVICES_PER_BUCKET, SERVICES_PER_BUCKET + 1)] == [
        1,
        1,
        1,
        2,
    ]
    for services in (1000, 5000, 20000):
        count = bucket_count(services)
        assert count & (count - 1) == 0
        assert count * SERVICES_PER_BUCKET >= services > count * SERVICES_PER_BUCKET // 2
        indexes = index_count(services)
        assert indexes * SERVICES_PER_INDEX >= services > indexes * SERVICES_PER_INDEX // 2


def test_bucket_of_is_the_masked_sha256_of_the_key() -> None:
    for key in ("checkout", "services/0001.json", "ünïcode"):
        digest = hashlib.sha256(key.encode()).digest()
        for buckets in (1, 2, 64, 2048):
            assert bucket_of(key, buckets) == int.from_bytes(digest[:4], "big") % buckets


def test_a_mesh_of_many_buckets_and_indexes_loads_whole_and_by_service(
    write_ir_bundle: WriteBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    mesh = wide_mesh(SERVICES_PER_INDEX + 50)  # two indexes, several service buckets
    buckets = bucket_count(len(mesh.services))
    assert buckets > 1
    bundle = write_ir_bundle(mesh, "wide")
    whole = load_bundle(bundle)
    assert (whole.manifest.indexes, whole.manifest.buckets) == (2, buckets)
    assert set(whole.manifest.files) == {"index/0000.json", "index/0001.json"}
    read: list[str] = []
    real_read = safefile.Folders.read

    def recording(self: safefile.Folders, relative: str, limit: int, **kw: int) -> bytes:
        read.append(relative)
        return real_read(self, relative, limit, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(safefile.Folders, "read", recording)
    for service in mesh.services:
        read.clear()
        assert load_service(bundle, service.name).service == whole.policy.service(service.name)
        bucket = service_bucket_path(bucket_of(service.name, buckets))
        assert read == ["manifest.json", index_path(bucket_of(bucket, 2)), bucket]
