"""Fixtures for the spec language's tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from spec_support import WriteSpec


@pytest.fixture
def write_spec(tmp_path: Path) -> WriteSpec:
    """Write YAML text to a fresh file and return its path."""
    counter = iter(range(1_000_000))

    def write(text: str) -> Path:
        path = tmp_path / f"spec-{next(counter)}.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write
