"""Fixtures for the simulator's tests: small meshes and scenarios written to tmp_path."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from simrun import MESH, SCENARIO

__all__ = ["MESH", "SCENARIO"]


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """``write(name, text)``: a file in tmp_path (text dedented)."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return _write


@pytest.fixture
def tiny(write: Callable[[str, str], Path]) -> Path:
    """A two-service mesh and a 20 s scenario; returns the scenario's path."""
    write("mesh.yaml", MESH)
    return write("scenario.yaml", SCENARIO)
