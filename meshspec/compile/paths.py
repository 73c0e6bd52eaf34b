"""File names inside a bundle, safe whatever the name they are made from.

Names are validated by the spec, yet a bundle path must never depend on that: anything other
than letters, digits, ``_``, ``-`` and non-leading dots is percent-encoded byte by byte, so a
name can neither leave its folder nor hide a file.
"""

from __future__ import annotations

_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def file_name(name: str) -> str:
    if name and name[0] != "." and _PLAIN.issuperset(name):
        return name
    out = []
    for index, char in enumerate(name):
        if char in _PLAIN and not (index == 0 and char == "."):
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode())
    return "".join(out) or "%00"
