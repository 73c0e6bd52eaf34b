"""File names inside a bundle, safe whatever the name they are made from.

The encoding lives in the runtime (``meshspec_runtime.layout.file_name``), beside the bundle's
other naming rules.
"""

from __future__ import annotations

from meshspec_runtime.layout import file_name

__all__ = ["file_name"]
