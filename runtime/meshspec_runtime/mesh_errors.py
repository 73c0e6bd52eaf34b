"""The errors of misusing a ``Mesh`` (re-exported by ``meshspec_runtime.mesh``, their former
home). Plain Python: integrations subclass them together with their libraries' own errors."""

from __future__ import annotations


class MeshError(Exception):
    """Misuse of a ``Mesh``: an upstream it does not know, a client used after ``close``."""


class UnknownUpstreamError(MeshError, LookupError):
    """A call to a service that is not an upstream of this service in the bundle."""


class MeshClosedError(MeshError, RuntimeError):
    """The ``Mesh`` (or a client it handed out) was used after ``close``."""
