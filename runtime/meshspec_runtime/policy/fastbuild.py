"""Building frozen slotted dataclasses on the hot path without their ``__init__``.

A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` (to get past
its own ``__setattr__`` guard), which costs about a microsecond for three fields - more than all
the policy bookkeeping of a successful call. Writing the slots through their descriptors gives
the same object for a third of that. Only for classes whose fields have no defaults to compute
and no ``__post_init__``.

In the build compiled by mypyc (see ``runtime/setup.py``) the classes are native: their fields
are not slot descriptors, ``object.__new__`` refuses them, and their constructor is already a
C function, so the builder is the class itself.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MemberDescriptorType
from typing import Any


def builder(cls: type[Any], *fields: str) -> Callable[..., Any]:
    """A function taking the values of ``fields`` positionally and returning an instance."""
    if not all(isinstance(vars(cls).get(name), MemberDescriptorType) for name in fields):
        return cls  # compiled by mypyc; ``fields`` are the constructor's, in order
    setters = [getattr(cls, name).__set__ for name in fields]
    new = object.__new__
    if len(setters) == 1:
        (set_a,) = setters

        def build1(a: object) -> Any:
            obj = new(cls)
            set_a(obj, a)
            return obj

        return build1
    if len(setters) == 2:
        set_a, set_b = setters

        def build2(a: object, b: object) -> Any:
            obj = new(cls)
            set_a(obj, a)
            set_b(obj, b)
            return obj

        return build2
    if len(setters) == 3:
        set_a, set_b, set_c = setters

        def build3(a: object, b: object, c: object) -> Any:
            obj = new(cls)
            set_a(obj, a)
            set_b(obj, b)
            set_c(obj, c)
            return obj

        return build3
    if len(setters) == 4:
        set_a, set_b, set_c, set_d = setters

        def build4(a: object, b: object, c: object, d: object) -> Any:
            obj = new(cls)
            set_a(obj, a)
            set_b(obj, b)
            set_c(obj, c)
            set_d(obj, d)
            return obj

        return build4
    raise ValueError(f"builder() supports 1 to 4 fields, got {len(fields)}")
