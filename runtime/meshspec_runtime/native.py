"""Which build of the policy core this installation runs.

``pip install meshspec-runtime`` compiles the request path (the call state machine, the
policies and balancers, the sync and asyncio drivers, the call log, the shared retry budget)
with mypyc when it can, and installs the same modules as plain Python when it cannot or when
``MESHSPEC_NO_EXTENSIONS=1`` (see ``runtime/setup.py``); an editable install is always plain
Python. Both behave the same, and the tests run on both.
"""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES


def is_compiled() -> bool:
    """True when the call state machine runs compiled by mypyc."""
    from meshspec_runtime.policy import call

    return (call.__file__ or "").endswith(tuple(EXTENSION_SUFFIXES))
