"""Bytecode for meshspec's own modules before a benchmark times its command.

An editable install leaves meshspec and meshspec_runtime as sources; with
``PYTHONDONTWRITEBYTECODE`` set (as on some CI and sandboxed machines) every process then
compiles them again, about 0.1 s of CPU, while its dependencies (SimPy, pydantic, numpy) come
with the bytecode their wheels' install wrote. Compiled once here, both sides of a comparison
load bytecode, as a regular install of meshspec does.
"""

from __future__ import annotations


def compile_sources() -> None:
    """Compile the packages' sources where they live, importing neither."""
    import compileall
    import importlib.util

    for package in ("meshspec", "meshspec_runtime"):
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations is not None, package
        for folder in spec.submodule_search_locations:
            compileall.compile_dir(folder, quiet=1)
