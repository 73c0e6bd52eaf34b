"""Fixtures for the spec language's tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support import REPO

SHOP = REPO / "examples" / "shop.yaml"

MINIMAL = """\
apiVersion: meshspec/v1
mesh:
  name: shop
  dns: {zone: shop.mesh.internal}
defaults:
  timeout: 2s
  retry:
    attempts: 3
    per_try_timeout: 500ms
    backoff: {base: 25ms, max: 1s, jitter: full}
services:
  web:
    port: 8080
    instances: [{address: 10.0.0.1}]
    upstreams:
      api: {}
  api:
    port: 8081
    instances:
      - {address: 10.0.1.1}
"""

WriteSpec = Callable[[str], Path]


@pytest.fixture
def write_spec(tmp_path: Path) -> WriteSpec:
    """Write YAML text to a fresh file and return its path."""
    counter = iter(range(1_000_000))

    def write(text: str) -> Path:
        path = tmp_path / f"spec-{next(counter)}.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write
