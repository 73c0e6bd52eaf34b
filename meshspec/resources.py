"""Locate the data folders (schemas, templates) in an installed wheel or a checkout.

A wheel carries them as the packages ``meshspec.schemas`` and ``meshspec.templates`` (see
pyproject.toml); an editable install of a checkout reads them from the top of the repository.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


def _data_folder(name: str) -> Traversable:
    try:
        return resources.files(f"meshspec.{name}")
    except ModuleNotFoundError:
        return _CHECKOUT / name


def schemas() -> Traversable:
    """The folder of published JSON Schemas."""
    return _data_folder("schemas")


def templates() -> Traversable:
    """The folder of jinja2 templates for text outputs."""
    return _data_folder("templates")
