"""Shared constants of the spec tests (a uniquely named module: every tests/ folder has a
conftest.py, so importing names from "conftest" would be ambiguous)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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
