"""The compiled zone against its real consumers: named-checkzone and a running NSD."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from compile_support import ir_mesh, serving_zone
from compile_zonecheck import assert_serves_exactly, named_checkzone
from meshspec_runtime.bundle import Endpoint

from meshspec.compile.emitters.dns import escape_label, zone_path
from meshspec.compile.ir import ResolvedMesh

WriteBundle = Callable[[ResolvedMesh, str], Path]


def test_named_checkzone_accepts_the_zone_with_its_serial(write_ir_bundle: WriteBundle) -> None:
    mesh = ir_mesh()
    out = write_ir_bundle(mesh, "bundle")
    output = named_checkzone(mesh.zone, out / zone_path(mesh.zone))
    assert "loaded serial 1" in output


def test_nsd_serves_exactly_the_endpoints(write_ir_bundle: WriteBundle, tmp_path: Path) -> None:
    mesh = ir_mesh()
    out = write_ir_bundle(mesh, "bundle")
    with serving_zone(tmp_path / "nsd", mesh.zone, out / zone_path(mesh.zone)) as resolver:
        assert assert_serves_exactly(resolver, mesh) == 6


def test_names_are_escaped_even_when_validation_would_refuse_them(
    write_ir_bundle: WriteBundle, tmp_path: Path
) -> None:
    # The IR is built directly here, so nothing validated these names: the emitter must escape
    # them so that the zone stays well-formed and serves the very same names.
    base = ir_mesh()
    odd = dataclasses.replace(
        base.services[2],
        name='pay"ments',
        endpoints=(
            Endpoint(id="odd id;$(x)", address="10.9.0.1", port=9090),
            Endpoint(id="dot.ted", address="10.9.0.2", port=9091, weight=5),
        ),
        edges=(),
    )
    mesh = dataclasses.replace(base, services=(dataclasses.replace(base.services[1]), odd))
    out = write_ir_bundle(mesh, "bundle")
    zonefile = out / zone_path(mesh.zone)
    text = zonefile.read_text()
    assert "odd\\032id\\059\\036\\040x\\041.pay\\034ments IN A 10.9.0.1" in text
    assert "dot\\046ted.pay\\034ments" in text
    named_checkzone(mesh.zone, zonefile)
    with serving_zone(tmp_path / "nsd", mesh.zone, zonefile) as resolver:
        assert assert_serves_exactly(resolver, mesh) == 4


def test_escape_label_leaves_plain_labels_alone() -> None:
    assert escape_label("checkout-0") == "checkout-0"
    assert escape_label("_tcp") == "_tcp"
    assert escape_label("a.b") == "a\\046b"
    assert escape_label("é") == "\\195\\169"
