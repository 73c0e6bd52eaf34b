"""Read a YAML document safely and fast, and find where any path of it sits in the source.

Parsing uses ``yaml_rs`` (a Rust YAML 1.2 parser: ``no`` stays a string, duplicate keys are
an error, alias expansion is bounded, Python tags are refused). It gives no node positions, so
a second, position-aware pass (PyYAML's ``compose``, which builds nodes without resolving
values or expanding aliases) runs only when a diagnostic has to be located.

Hostile input is stopped before it costs much: anything but a regular file (a FIFO, a device)
is refused before a byte is read, files above :data:`MAX_BYTES` are refused before parsing,
bytes must be UTF-8 without control characters, flow nesting is bounded by the parser and
block nesting by :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
import yaml_rs

from meshspec.spec.diagnostics import Diagnostic, SpecError, format_path

MAX_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 64
# Events replayed through aliases. A large spec that aliases a policy anchor in every
# service replays about 50 events per use (250,000 for 5,000 services); a "billion laughs"
# document needs billions, and is stopped after a fraction of a second.
ALIAS_LIMITS = yaml_rs.AliasLimits(max_total_replayed_events=1_000_000, max_replay_stack_depth=32)

PathParts = Sequence[str | int]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_PARSE_POSITION = re.compile(r"line (\d+), column (\d+)")
_DUPLICATE_KEY = re.compile(r"duplicate mapping key: (.*)$")
_INVALID_TAG = re.compile(r"Invalid tag: '(.*)'")
# The parser never builds Python objects; a Python tag is refused outright all the same,
# since it only ever appears in an attack or a mistake.
_PYTHON_TAG = re.compile(r"!!python/[^\s\[\]{},]*|tag:yaml\.org,2002:python/[^\s\[\]{},]*")
# Block nesting deeper than MAX_DEPTH needs a line indented at least that far (flow nesting
# is bounded by the parser itself), so most documents skip the walk that measures depth.
_DEEP_INDENT = re.compile(rf"^[ \t-]{{{MAX_DEPTH},}}", re.MULTILINE)


class PositionLookup:
    """Maps a path inside the document to the 1-based (line, column) of its node.

    The position-aware parse happens on the first call, so valid documents never pay for it.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._root: yaml.Node | None = None
        self._composed = False

    def _node(self) -> yaml.Node | None:
        if not self._composed:
            self._composed = True
            self._root = _compose(self._text)
        return self._root

    def locate(self, path: PathParts, *, key: bool = False) -> tuple[int, int]:
        """Position of the deepest node on ``path`` that exists.

        With ``key``, a path that exists whole points at its last key rather than its value
        (for unknown fields and bad names).
        """
        current = self._node()
        if current is None:
            return (1, 1) if self._text else (0, 0)
        mark = current.start_mark
        for index, part in enumerate(path):
            child = _child(current, part)
            if child is None:
                break
            key_node, current = child
            last = index == len(path) - 1
            mark = key_node.start_mark if key and last and key_node else current.start_mark
        return mark.line + 1, mark.column + 1

    def document_starts(self) -> list[tuple[int, int]]:
        """The (line, column) where each YAML document of the text starts: more than one when
        the text is a stream of documents, which the data alone cannot tell from a list."""
        loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        starts: list[tuple[int, int]] = []
        try:
            for event in yaml.parse(self._text, Loader=loader):
                mark = event.start_mark if isinstance(event, yaml.DocumentStartEvent) else None
                if mark is not None:
                    starts.append((mark.line + 1, mark.column + 1))
        except (yaml.YAMLError, RecursionError, ValueError):
            return starts
        return starts

    def duplicate_key(self) -> tuple[list[str | int], int, int] | None:
        """The first key that appears twice in one mapping: its path and position."""
        root = self._node()
        if root is None:
            return None
        stack: list[tuple[yaml.Node, list[str | int]]] = [(root, [])]
        while stack:
            node, path = stack.pop()
            if isinstance(node, yaml.MappingNode):
                seen: set[str] = set()
                for key_node, value in node.value:
                    name = str(key_node.value)
                    if isinstance(key_node, yaml.ScalarNode) and name in seen:
                        mark = key_node.start_mark
                        return [*path, name], mark.line + 1, mark.column + 1
                    seen.add(name)
                    stack.append((value, [*path, name]))
            elif isinstance(node, yaml.SequenceNode):
                stack.extend((item, [*path, i]) for i, item in enumerate(node.value))
        return None


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node | None, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        wanted = str(part)
        for key_node, value in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == wanted:
                return key_node, value
        return None
    if (
        isinstance(node, yaml.SequenceNode)
        and isinstance(part, int)
        and 0 <= part < len(node.value)
    ):
        return None, node.value[part]
    return None


def _compose(text: str) -> yaml.Node | None:
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        node: yaml.Node | None = yaml.compose(text, Loader=loader)
        return node
    except (yaml.YAMLError, RecursionError, ValueError):
        return None


_OPEN_SPEC = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC


def read_source(path: Path, display: str) -> bytes:
    """The file's bytes, or SpecError when it is unreadable, not a regular file or oversized.

    Opened with ``O_NONBLOCK`` (a FIFO does not wait for a writer) and checked with ``fstat`` on
    the opened descriptor before anything is read: a FIFO, a device such as ``/dev/zero`` or a
    folder (also through a link) is refused at once, and at most ``MAX_BYTES + 1`` bytes are
    ever read.
    """

    def fail(code: str, message: str) -> SpecError:
        return SpecError([Diagnostic(display, 0, 0, code, "", message)])

    try:
        fd = os.open(path, _OPEN_SPEC)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise fail(
                    "E0001", f"cannot read the file: {_kind(info.st_mode)}, not a regular file"
                )
            too_big = info.st_size > MAX_BYTES
            data = b"" if too_big else _read_at_most(fd, MAX_BYTES + 1)
        finally:
            os.close(fd)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise fail("E0001", f"cannot read the file: {reason}") from None
    if too_big or len(data) > MAX_BYTES:
        raise fail(
            "E0002",
            f"file is larger than the {MAX_BYTES // (1024 * 1024)} MiB limit; "
            "expected a mesh spec, found a huge file",
        )
    return data


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _read_at_most(fd: int, most: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while total < most:
        chunk = os.read(fd, min(most - total, 16 * 1024 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def read_text(path: Path, display: str, source: bytes | None = None) -> str:
    """The file's text (``source``: its bytes, already read), or SpecError for unreadable,
    oversized, non-UTF-8 or binary files."""
    data = read_source(path, display) if source is None else source
    return decode_text(data, display)


def decode_text(data: bytes, display: str) -> str:
    """``data`` as text, or SpecError (located) when it is not UTF-8 text."""

    def fail(code: str, message: str, line: int = 0, column: int = 0) -> SpecError:
        return SpecError([Diagnostic(display, line, column, code, "", message)])

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line, column = _line_column(data, error.start)
        raise fail(
            "E0003",
            f"expected UTF-8 text, found byte 0x{data[error.start]:02x} that is not UTF-8",
            line,
            column,
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    control = _CONTROL.search(text)
    if control is not None:
        line, column = _line_column(text, control.start())
        raise fail(
            "E0004",
            f"expected YAML text, found control character U+{ord(control.group()):04X} "
            "(binary data?)",
            line,
            column,
        )
    return text


def _line_column(data: str | bytes, offset: int) -> tuple[int, int]:
    before = data[:offset]
    newline = "\n" if isinstance(before, str) else b"\n"
    line = before.count(newline) + 1  # type: ignore[arg-type]
    start = before.rfind(newline) + 1  # type: ignore[arg-type]
    return line, offset - start + 1


def parse_text(text: str, display: str) -> tuple[Any, PositionLookup]:
    """Parse YAML text into plain Python data; SpecError (located) when it is not YAML."""
    lookup = PositionLookup(text)

    def fail(code: str, message: str, line: int, column: int, path: str = "") -> SpecError:
        return SpecError([Diagnostic(display, line, column, code, path, message)])

    # the substring test (memchr speed) spares most documents the regex scan
    python_tag = _PYTHON_TAG.search(text) if "python/" in text else None
    if python_tag is not None:
        line, column = _line_column(text, python_tag.start())
        raise fail(
            "E0015",
            f"unsupported YAML tag {python_tag.group()!r}; expected plain YAML data",
            line,
            column,
        )
    try:
        data = yaml_rs.loads(
            text,
            parse_datetime=False,
            alias_limits=ALIAS_LIMITS,
            duplicate_key_policy=yaml_rs.DuplicateKeyPolicy.Error,
        )
    except yaml_rs.YAMLDecodeError as error:
        raise _decode_failure(str(error), display, text, lookup) from None
    except (RecursionError, MemoryError, OverflowError):
        raise fail("E0013", f"nesting is deeper than {MAX_DEPTH} levels", 1, 1) from None
    if data is None:  # nothing but blanks, comments or a bare "---"
        raise fail("E0005", "the document is empty; expected a mapping with apiVersion", 1, 1)
    if _DEEP_INDENT.search(text) and _too_deep(data):
        raise fail("E0013", f"nesting is deeper than {MAX_DEPTH} levels", 1, 1)
    return data, lookup


def _decode_failure(message: str, display: str, text: str, lookup: PositionLookup) -> SpecError:
    first_line = message.splitlines()[0] if message else "invalid YAML"
    duplicate = _DUPLICATE_KEY.search(first_line)
    if duplicate is not None:
        found = lookup.duplicate_key()
        path, line, column = found if found is not None else _second_key(text, duplicate.group(1))
        return SpecError(
            [
                Diagnostic(
                    display,
                    line,
                    column,
                    "E0011",
                    format_path(path),
                    f"duplicate key {duplicate.group(1)}; expected each key once per mapping",
                )
            ]
        )
    if "alias" in first_line and "limit" in first_line:
        return SpecError(
            [
                Diagnostic(
                    display,
                    1,
                    1,
                    "E0012",
                    "",
                    "aliases expand to too much data (an alias bomb?); expected a document "
                    "that uses anchors sparingly",
                )
            ]
        )
    tag = _INVALID_TAG.search(first_line)
    if tag is not None:
        offset = text.find(tag.group(1))
        line, column = _line_column(text, offset) if offset >= 0 else (0, 0)
        return SpecError(
            [
                Diagnostic(
                    display,
                    line,
                    column,
                    "E0015",
                    "",
                    f"unsupported YAML tag {tag.group(1)!r}; expected plain YAML data",
                )
            ]
        )
    position = _PARSE_POSITION.search(first_line)
    line, column = (int(position.group(1)), int(position.group(2))) if position else (0, 0)
    reason = message.splitlines()[-1].strip() if message else "invalid YAML"
    if reason == "recursion limit exceeded":
        return SpecError([Diagnostic(display, line, column, "E0013", "", "nesting is too deep")])
    return SpecError([Diagnostic(display, line, column, "E0010", "", f"invalid YAML: {reason}")])


def _second_key(text: str, quoted: str) -> tuple[list[str | int], int, int]:
    """Where a key appears for the second time, found in the text (when the position-aware
    pass cannot build the document); (0, 0) when it cannot be found either."""
    key = quoted.strip().strip("'\"")
    spots = [m.start(2) for m in re.finditer(rf"(^|[\s{{,])({re.escape(key)})\s*:", text, re.M)]
    if len(spots) < 2:
        return [], 0, 0
    line, column = _line_column(text, spots[1])
    return [], line, column


def _too_deep(data: Any) -> bool:
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > MAX_DEPTH:
                return True
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            if depth > MAX_DEPTH:
                return True
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))
    return False


def load_yaml_document(
    path: Path, display: str | None = None, source: bytes | None = None
) -> tuple[Any, PositionLookup]:
    """Read (unless ``source`` holds its bytes) and parse ``path``: (plain data, position
    lookup), or SpecError (located)."""
    shown = display if display is not None else str(path)
    return parse_text(read_text(path, shown, source), shown)
