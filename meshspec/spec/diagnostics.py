"""Located diagnostics: what every spec or scenario error looks like.

A :class:`Diagnostic` names the file, the 1-based line and column, a stable code (listed in
docs/spec.md), the path inside the document (``services.payments.retry.attempts``) and a
message that says what was expected and what was found. :class:`SpecError` carries all the
diagnostics found in one run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]

# Codes whose diagnostics mean "the tool could not be used as asked" rather than "the spec is
# wrong": the CLI exits 2 for them instead of 1.
USAGE_CODES: frozenset[str] = frozenset({"E0001", "E0300", "E0301"})


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem in one file, at one place."""

    file: str
    line: int
    """1-based; 0 when unknown."""
    column: int
    """1-based; 0 when unknown."""
    code: str
    path: str
    """Path inside the document, e.g. ``services.payments.instances[1].address``; "" for
    the whole document."""
    message: str
    severity: Severity = "error"

    def format(self) -> str:
        """``FILE:LINE:COL: error[CODE]: message (at PATH)``."""
        where = f" (at {self.path})" if self.path else ""
        return (
            f"{self.file}:{self.line}:{self.column}: "
            f"{self.severity}[{self.code}]: {self.message}{where}"
        )

    def format_github(self) -> str:
        """A GitHub Actions workflow command that annotates the line."""
        kind = "error" if self.severity == "error" else "warning"
        message = self.message + (f" (at {self.path})" if self.path else "")
        return (
            f"::{kind} file={_gh_property(self.file)},line={self.line},col={self.column},"
            f"title={self.code}::{_gh_data(message)}"
        )

    def as_dict(self) -> dict[str, str | int]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "path": self.path,
            "message": self.message,
            "severity": self.severity,
        }


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


class SpecError(Exception):
    """Raised when a document is invalid; ``diagnostics`` lists every problem found."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: list[Diagnostic] = sort_diagnostics(diagnostics)
        first = self.diagnostics[0].format() if self.diagnostics else "invalid document"
        more = len(self.diagnostics) - 1
        super().__init__(first + (f" (and {more} more)" if more > 0 else ""))

    @property
    def is_usage_error(self) -> bool:
        """True when the input could not be read or the options were wrong (CLI exit 2)."""
        return any(d.code in USAGE_CODES for d in self.diagnostics)


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Deduplicated, in file order (unknown positions last within a file)."""
    unique = dict.fromkeys(diagnostics)
    return sorted(
        unique,
        key=lambda d: (d.file, d.line == 0, d.line, d.column, d.code, d.path, d.message),
    )


def format_path(path: Sequence[str | int]) -> str:
    """``("services", "a", "instances", 1)`` -> ``services.a.instances[1]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
