"""Pause Python's cyclic garbage collector while a large spec turns into objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic collector for the duration of the block (nesting is fine).

    Loading, resolving and emitting a large spec allocate millions of long-lived, acyclic
    objects; the collector would walk them again and again as they pile up and find nothing,
    which doubled the time of a 5,000-service compile (benchmarks/compile.py). Reference
    counting still frees everything acyclic, and collection resumes afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
