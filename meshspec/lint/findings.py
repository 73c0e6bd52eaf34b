"""What a check finds, before it is located: an edge (or a service) and the fields at fault."""

from __future__ import annotations

from dataclasses import dataclass

from meshspec.spec.resolve import SpecPath


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    caller: str
    upstream: str
    message: str
    fields: tuple[SpecPath, ...] = ()
    """Policy fields of the edge (e.g. ``("retry", "attempts")``) whose values conflict: the
    warning points at the one set by the most specific layer; at the edge when none is set."""
