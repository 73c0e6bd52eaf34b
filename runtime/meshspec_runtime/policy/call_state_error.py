"""The error a driver gets for breaking a call's protocol.

A module of its own because the modules mypyc compiles cannot define subclasses of builtin
exceptions (see ``runtime/setup.py``).
"""


class CallStateError(RuntimeError):
    """The driver broke the protocol (e.g. ``next`` while an attempt is in flight)."""
