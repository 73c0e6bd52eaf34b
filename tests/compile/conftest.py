"""Fixtures of the compile tests (helpers live in compile_support.py, importable by name)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from compile_support import ir_mesh

from meshspec.compile.ir import ResolvedMesh
from meshspec.compile.pipeline import BuiltBundle, build_bundle, write_bundle


@pytest.fixture
def mesh() -> ResolvedMesh:
    return ir_mesh()


@pytest.fixture
def built(mesh: ResolvedMesh) -> BuiltBundle:
    return build_bundle(mesh, spec_digest="0" * 64)


@pytest.fixture
def write_ir_bundle(tmp_path: Path) -> Callable[[ResolvedMesh, str], Path]:
    def write(mesh: ResolvedMesh, name: str = "bundle") -> Path:
        """Publish ``mesh`` into the home ``name``; return the version folder written."""
        return write_bundle(build_bundle(mesh, spec_digest="0" * 64), tmp_path / name)

    return write
