"""The pipeline: emitters plug in by one list, versions come from content only, the serial
continues from the previous bundle, and bad emitter output never reaches the disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from compile_support import ir_mesh, listing
from meshspec_runtime.loader import load_bundle
from support import REPO

from meshspec.compile import compile_spec, compile_spec_in_memory
from meshspec.compile.emitters import EMITTERS, policy
from meshspec.compile.emitters.service_slices import buckets
from meshspec.compile.ir import ResolvedMesh
from meshspec.compile.jsonfile import dump_json
from meshspec.compile.manifest import Previous, next_serial
from meshspec.compile.pipeline import build_bundle, write_bundle

SHOP = REPO / "examples" / "shop.yaml"


def inventory_emitter(mesh: ResolvedMesh) -> dict[str, bytes]:
    names = "".join(f"{service.name}\n" for service in mesh.services)
    return {"extra/services.txt": names.encode()}


def test_a_new_target_is_one_more_emitter(tmp_path: Path) -> None:
    plain = build_bundle(ir_mesh(), "0" * 64)
    extended = build_bundle(ir_mesh(), "0" * 64, emitters=[*EMITTERS, inventory_emitter])
    assert set(extended.files) - set(plain.files) == {"extra/services.txt"}
    assert extended.version != plain.version
    write_bundle(extended, tmp_path / "b")
    loaded = load_bundle(tmp_path / "b")
    assert "extra/services.txt" in listing(loaded.path)


@pytest.mark.parametrize(
    "bad",
    [{"policy.json": b"again"}, {"manifest.json": b"{}"}, {"../x": b""}, {"/etc/x": b""}],
)
def test_bad_emitter_paths_fail_before_anything_is_written(
    bad: dict[str, bytes], tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match="bundle path"):
        build_bundle(ir_mesh(), "0" * 64, emitters=[*EMITTERS, lambda mesh: bad])


def test_the_version_depends_on_content_not_on_the_serial_or_the_input() -> None:
    first = build_bundle(ir_mesh(), "0" * 64)
    later = build_bundle(ir_mesh(), "1" * 64, previous=Previous("0" * 16, 41))
    assert first.version == later.version
    assert (first.manifest.dns_serial, later.manifest.dns_serial) == (1, 42)
    assert first.manifest.spec_digest != later.manifest.spec_digest
    assert b"41" not in later.files["dns/shop.mesh.internal.zone"]
    assert b" 42 ; serial" in later.files["dns/shop.mesh.internal.zone"]


def test_the_same_content_from_other_options_keeps_its_version() -> None:
    plain = compile_spec_in_memory(SHOP)
    same_value = compile_spec_in_memory(SHOP, overrides=["services.web.port=8080"])
    assert plain.version == same_value.version
    assert plain.manifest.spec_digest != same_value.manifest.spec_digest


def test_serials_follow_rfc_1982() -> None:
    assert next_serial(None, "v") == 1
    assert next_serial(Previous("v", 7), "v") == 7
    assert next_serial(Previous("v", 7), "w") == 8
    assert next_serial(Previous("v", 2**32 - 1), "w") == 1  # wraps, skipping 0
    assert next_serial(Previous("v", None), "w") == 1


def test_an_unreadable_previous_manifest_restarts_the_serial(tmp_path: Path) -> None:
    out = tmp_path / "b"
    compile_spec(SHOP, out)
    (out / "current" / "manifest.json").write_text("{broken")
    assert compile_spec(SHOP, out, env="prod").serial == 1


def test_policy_files_hold_the_policy_document_as_json() -> None:
    """policy.json and the service buckets (endpoints encoded once per service) are exactly
    the plain PolicyDocument data written with dump_json (IPv6 addresses included)."""
    mesh = ir_mesh()
    data = policy.document(mesh)
    assert any(":" in e["address"] for endpoints in data["endpoints"].values() for e in endpoints)
    expected = {policy.PATH: dump_json(data), **buckets(data, mesh.buckets())}
    assert policy.emit(mesh) == expected
