"""``consul validate``: Consul's own config-file parser accepts every compiled service file
(what an agent's config directory and ``consul services register`` read)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from compile_support import TOOLS_DIRS, ir_mesh
from support import REPO, require_binary

from meshspec.compile import compile_spec
from meshspec.compile.emitters.consul_services import path_of
from meshspec.compile.pipeline import build_bundle

SHOP = REPO / "examples" / "shop.yaml"


def consul_validate(
    services: list[tuple[str, bytes]], folder: Path
) -> subprocess.CompletedProcess[str]:
    consul = require_binary("consul", extra_dirs=TOOLS_DIRS)
    folder.mkdir()
    # a minimal agent configuration beside the service definitions, as in a config directory
    (folder / "agent.json").write_text(json.dumps({"data_dir": str(folder / "data")}))
    for name, content in services:
        (folder / name).write_bytes(content)
    return subprocess.run(
        [str(consul), "validate", str(folder)], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("env", [None, "staging", "prod"], ids=lambda env: env or "base")
def test_consul_validate_accepts_every_compiled_service_file(
    env: str | None, tmp_path: Path
) -> None:
    out = tmp_path / "bundle"
    compile_spec(SHOP, out, env=env)
    files = sorted((out / "current" / "consul" / "services").glob("*.json"))
    names = {e["Name"] for f in files for e in json.loads(f.read_bytes())["services"]}
    assert len(names) == 8  # every service of the example, in its bucket's file
    result = consul_validate([(f.name, f.read_bytes()) for f in files], tmp_path / "config")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration is valid" in result.stdout


def test_consul_validate_accepts_every_check_kind(tmp_path: Path) -> None:
    # the IR mesh has http (with thresholds), grpc, and tcp on an IPv6 address
    files = build_bundle(ir_mesh(), "0" * 64).files
    services = [
        (p.rsplit("/", 1)[1], c) for p, c in files.items() if p.startswith("consul/services/")
    ]
    result = consul_validate(services, tmp_path / "config")
    assert result.returncode == 0, result.stdout + result.stderr


def test_consul_validate_does_refuse_a_bad_key(tmp_path: Path) -> None:
    # the check above is worth something only if Consul's parser rejects what it does not know
    path = path_of(ir_mesh(), "checkout")
    document = json.loads(build_bundle(ir_mesh(), "0" * 64).files[path])
    (entry,) = (e for e in document["services"] if e["ID"] == "checkout-0")
    entry["Checks"][0]["SuccessBeforePassing"] = 1
    result = consul_validate([("checkout.json", json.dumps(document).encode())], tmp_path / "c")
    assert result.returncode != 0
    assert "SuccessBeforePassing" in result.stdout + result.stderr
