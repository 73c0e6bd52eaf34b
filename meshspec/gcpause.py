"""Pause Python's cyclic garbage collector while a large spec turns into objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused(*, freeze: bool = False) -> Iterator[None]:
    """Pause the cyclic collector for the duration of the block (nesting is fine).

    Loading, resolving and emitting a large spec allocate millions of long-lived, acyclic
    objects; the collector would walk them again and again as they pile up and find nothing,
    which doubled the time of a 5,000-service compile (benchmarks/compile.py). Reference
    counting still frees everything acyclic, and collection resumes afterwards.

    ``freeze``: then move every object the collector tracks out of its reach (``gc.freeze``),
    so the first collection after the pause does not walk all the block made (the simulator's
    world and summary: a tenth of a 1,000-service run). Reference counting still frees them;
    ``gc.unfreeze`` (``World.run`` calls it as it ends) hands them back.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if was_enabled:
            gc.enable()
