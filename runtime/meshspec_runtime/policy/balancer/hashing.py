"""Stable 64-bit hashing for consistent-hash balancers.

Python's ``hash()`` is salted per process, so two replicas would map one key to different
endpoints. BLAKE2b is in the standard library, fast, and the same everywhere.
"""

from __future__ import annotations

from hashlib import blake2b


def hash64(text: str) -> int:
    """The same 64-bit value for the same text, in every process and on every platform."""
    return int.from_bytes(blake2b(text.encode(), digest_size=8).digest(), "little")
