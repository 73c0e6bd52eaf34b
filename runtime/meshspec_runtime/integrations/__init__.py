"""Client and server integrations, one module per library, each an optional extra.

Nothing here is imported by ``import meshspec_runtime``: a module is loaded when ``Mesh`` hands
out its client, or when an exception of its library is classified (``meshspec_runtime.errors``).
Each module also holds ``error_rules()``: how its library's exceptions map to outcomes.
"""
