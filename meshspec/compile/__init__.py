"""Compile a mesh spec into a versioned runtime bundle (docs/bundle.md).

spec -> resolved mesh (``ir``, built by ``resolve``) -> one emitter per target (``emitters``)
-> version, serial and manifest (``manifest``) -> atomic write (``writer``).
"""

from __future__ import annotations

from meshspec.compile.api import CompileResult, compile_spec, compile_spec_in_memory

__all__ = ["CompileResult", "compile_spec", "compile_spec_in_memory"]
