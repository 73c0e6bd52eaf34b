"""The runtime's bundle loader: accepts what the compiler wrote, refuses anything else by name."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from compile_support import ir_mesh, listing, relist
from meshspec_runtime.bundle import BUNDLE_FORMAT, PolicyDocument, UnknownServiceError
from meshspec_runtime.loader import BundleError, load_bundle

from meshspec.compile.emitters.consul_services import path_of
from meshspec.compile.ir import ResolvedMesh

WriteBundle = Callable[[ResolvedMesh, str], Path]


def rewrite_policy(bundle: Path, edit: Callable[[dict[str, Any]], object]) -> None:
    """Edit policy.json and record its new digest: a consistent bundle, but a wrong document."""
    policy = json.loads((bundle / "policy.json").read_text())
    edit(policy)
    relist(bundle, "policy.json", json.dumps(policy).encode())


@pytest.fixture
def bundle(write_ir_bundle: WriteBundle, mesh: ResolvedMesh) -> Path:
    return write_ir_bundle(mesh, "bundle")


def test_loads_what_the_compiler_wrote(bundle: Path, mesh: ResolvedMesh) -> None:
    loaded = load_bundle(bundle)
    assert loaded.version == loaded.policy.version == loaded.manifest.version
    checkout = loaded.policy.service("checkout")
    payments = checkout.upstreams["payments"]
    ir_edge = mesh.service("checkout").edges[1]
    assert payments.policy == ir_edge.policy
    assert payments.endpoints == mesh.service("payments").endpoints
    # the compiler built policy.json without pydantic; the runtime's model reads it back whole
    assert isinstance(loaded.policy, PolicyDocument)
    assert set(loaded.manifest.files) == {"index/0000.json"}  # a small mesh: one bucket
    assert loaded.manifest.files.keys() | listing(bundle).keys() == {
        p.relative_to(bundle).as_posix()
        for p in bundle.rglob("*")
        if p.is_file() and p.name != "manifest.json"
    }


@pytest.mark.parametrize("victim", ["policy.json", path_of(ir_mesh(), "payments")])
def test_a_tampered_file_is_named(bundle: Path, victim: str) -> None:
    path = bundle / victim
    path.write_bytes(path.read_bytes().replace(b"9090", b"9091"))
    with pytest.raises(BundleError, match="changed after compilation") as error:
        load_bundle(bundle)
    assert error.value.file == victim
    assert victim in str(error.value)


def test_a_missing_file_is_named(bundle: Path) -> None:
    (bundle / "prometheus/rules.yml").unlink()
    with pytest.raises(BundleError, match="missing") as error:
        load_bundle(bundle)
    assert error.value.file == "prometheus/rules.yml"


def test_an_unlisted_file_is_refused(bundle: Path) -> None:
    (bundle / "consul/services/intruder.json").write_text("{}")
    with pytest.raises(BundleError, match="not listed") as error:
        load_bundle(bundle)
    assert error.value.file == "consul/services/intruder.json"


@pytest.mark.parametrize("old", [1, 2, BUNDLE_FORMAT + 1])
def test_an_unknown_format_is_refused(bundle: Path, old: int) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["format"] = old
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError) as error:
        load_bundle(bundle)
    assert str(error.value).endswith(
        f"bundle format {old} is not one this runtime reads (formats 3 and 4); "
        "upgrade meshspec-runtime or recompile"
    )
    assert error.value.file == "manifest.json"


def test_a_format_3_bundle_is_still_read(bundle: Path) -> None:
    # format 4 changed only the Consul config entries' files, which the runtime never reads
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["format"] = 3
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert load_bundle(bundle).policy.services


def test_an_index_listing_paths_outside_the_bundle_is_refused(bundle: Path) -> None:
    relist(bundle, "../escape.json", entry={"sha256": "0" * 64, "size": 0})
    with pytest.raises(BundleError, match="outside the bundle") as error:
        load_bundle(bundle)
    assert error.value.file == "../escape.json"


def test_a_manifest_listing_anything_but_its_indexes_is_refused(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["policy.json"] = listing(bundle)["policy.json"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        BundleError, match=r"'policy\.json', which is not one of its 1 index"
    ) as error:
        load_bundle(bundle)
    assert error.value.file == "manifest.json"


def test_an_index_listing_a_path_of_another_bucket_is_refused(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["indexes"] = 2  # what index/0000.json lists now hashes into two indexes
    relisted = json.loads((bundle / "index/0000.json").read_bytes())
    relisted["bucket"] = 1
    raw = json.dumps(relisted).encode()
    (bundle / "index/0001.json").write_bytes(raw)
    manifest["files"]["index/0001.json"] = {
        "sha256": hashlib.sha256(raw).hexdigest(),
        "size": len(raw),
    }
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="which hashes into index/000") as error:
        load_bundle(bundle)
    assert error.value.file.startswith("index/000")


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"format": 1}'])
def test_a_broken_manifest_is_named(bundle: Path, content: bytes) -> None:
    (bundle / "manifest.json").write_bytes(content)
    with pytest.raises(BundleError, match="not a valid manifest") as error:
        load_bundle(bundle)
    assert error.value.file == "manifest.json"


@pytest.mark.parametrize(
    ("listed", "problem"),
    [
        ("a" * 5000, "unreadable: File name too long"),
        # opened folder by folder, a path longer than the system's limit is merely missing
        ("/".join(["b" * 255] * 20), "listed but missing"),
    ],
)
def test_an_index_listing_a_name_too_long_for_the_system_is_refused(
    bundle: Path, listed: str, problem: str
) -> None:
    relist(bundle, listed, entry={"sha256": "0" * 64, "size": 0})
    with pytest.raises(BundleError, match=problem) as error:
        load_bundle(bundle)
    assert error.value.file == listed


def test_a_broken_manifest_is_named_in_one_line_without_echoing_it(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"] = None
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2))
    with pytest.raises(BundleError) as error:
        load_bundle(bundle)
    assert "\n" not in str(error.value)
    assert error.value.problem.startswith("not a valid manifest: files: Input should be")
    assert "None" not in error.value.problem and "http" not in error.value.problem


def test_a_folder_that_is_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="missing: is this a meshspec bundle") as error:
        load_bundle(tmp_path)
    assert error.value.file == "manifest.json"


def test_policy_of_another_version_is_refused(bundle: Path) -> None:
    # Consistent digests but a policy.json whose version disagrees: a bundle stitched together.
    rewrite_policy(bundle, lambda policy: policy.update(version="0" * 16))
    with pytest.raises(BundleError, match="version") as error:
        load_bundle(bundle)
    assert error.value.file == "policy.json"


def test_endpoints_and_policies_are_stored_once_and_shared(bundle: Path) -> None:
    raw = json.loads((bundle / "policy.json").read_text())
    assert set(raw["endpoints"]) == set(raw["services"]) == {"checkout", "inventory", "payments"}
    assert [e["id"] for e in raw["endpoints"]["payments"]] == ["payments-0", "payments-1"]
    # each distinct policy once, under the first 12 hex digits of its canonical JSON's sha256
    for key, stored in raw["policies"].items():
        canonical = json.dumps(stored, sort_keys=True, separators=(",", ":")).encode()
        assert key == hashlib.sha256(canonical).hexdigest()[:12]
    edges = raw["services"]["checkout"]["upstreams"]
    assert edges["payments"]["service"] == "payments"
    assert len(raw["policies"]) == 2 and edges["payments"]["policy"] in raw["policies"]
    assert raw["services"]["payments"]["upstreams"] == {}
    document = load_bundle(bundle).policy
    one, two = document.service("checkout"), document.service("checkout")
    assert one == two
    assert one.upstreams["payments"].endpoints is document.endpoints["payments"]
    assert one.upstreams["payments"].policy is document.policies[edges["payments"]["policy"]]


def test_an_unknown_service_is_a_clear_error(bundle: Path) -> None:
    document = load_bundle(bundle).policy
    with pytest.raises(UnknownServiceError, match="no service 'billing' in the policy document"):
        document.service("billing")
    with pytest.raises(KeyError):  # as services["billing"] would
        document.service("billing")


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            lambda p: p["services"]["checkout"]["upstreams"]["payments"].update(policy="0" * 12),
            "services.checkout.upstreams.payments.policy: no policy '000000000000' in policies",
        ),
        (
            lambda p: p["endpoints"].pop("inventory"),
            "services.checkout.upstreams.inventory.service: no service 'inventory' in endpoints",
        ),
        (
            lambda p: p["services"]["payments"].update(name="billing"),
            "services.payments.name: is 'billing', not the service's key 'payments'",
        ),
    ],
    ids=["dangling-policy-id", "unknown-upstream-service", "misnamed-service"],
)
def test_a_reference_that_does_not_resolve_is_named(
    bundle: Path, edit: Callable[[dict[str, Any]], object], problem: str
) -> None:
    rewrite_policy(bundle, edit)
    with pytest.raises(BundleError) as error:
        load_bundle(bundle)
    assert error.value.file == "policy.json"
    assert str(error.value) == f"{bundle}: policy.json: not a valid policy document: {problem}"


def test_a_malformed_policy_document_names_the_path_without_echoing_it(bundle: Path) -> None:
    rewrite_policy(bundle, lambda p: p["services"]["checkout"].update(port="eighty"))
    with pytest.raises(BundleError, match=r"services\.checkout\.port: Input should be") as error:
        load_bundle(bundle)
    assert error.value.file == "policy.json"
    assert "payments-0" not in str(error.value)  # the input is not dumped into the message


def test_a_linked_folder_is_refused(bundle: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.json").write_text("{}")
    (bundle / "consul" / "extra").symlink_to(elsewhere)
    with pytest.raises(BundleError, match="symbolic link") as error:
        load_bundle(bundle)
    assert error.value.file == "consul/extra"
