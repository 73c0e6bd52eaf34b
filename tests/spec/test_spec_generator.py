"""benchmarks/gen_spec.py makes valid, deterministic, acyclic specs (the compile benchmark
reuses it, so a broken generator would silently measure an error path)."""

from __future__ import annotations

import sys
from pathlib import Path

from support import REPO

from meshspec.spec import check_spec_file, edge_policy

sys.path.insert(0, str(REPO / "benchmarks"))

from gen_spec import generate


def test_generated_spec_is_valid_and_deterministic(tmp_path: Path) -> None:
    text = generate(services=300, instances=4, upstreams=3)
    assert text == generate(services=300, instances=4, upstreams=3)
    path = tmp_path / "big.yaml"
    path.write_text(text, encoding="utf-8")
    spec = check_spec_file(path)  # raises on any error, a cycle included
    assert len(spec.services) == 300
    assert all(len(s.instances) == 4 for s in spec.services.values())
    assert spec.edge_count() == sum(min(3, 299 - i) for i in range(300))
    caller = spec.services["svc-00000"]
    assert all(edge_policy(spec, "svc-00000", up).timeout > 0 for up in caller.upstreams)
