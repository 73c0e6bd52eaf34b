"""File names inside a bundle, safe whatever the name they are made from.

The encoding lives in the runtime (``meshspec_runtime.layout.file_name``), which must find a
service's slice by the same name the compiler gave it.
"""

from __future__ import annotations

from meshspec_runtime.layout import file_name, service_slice_path

__all__ = ["file_name", "service_slice_path"]
