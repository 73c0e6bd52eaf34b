"""Hostile input gets a clear, located error quickly and with bounded memory: never a
traceback, a hang or a Python object."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from spec_support import MINIMAL, WriteSpec

from meshspec.spec import SpecError, load_spec
from meshspec.spec.yamlio import MAX_BYTES

# Far above what any of these takes, low enough to catch a hang or a quadratic blow-up.
HANG_GUARD = 20.0


def _error(path: Path) -> tuple[str, int, int, str]:
    started = time.perf_counter()
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert time.perf_counter() - started < HANG_GUARD
    first = caught.value.diagnostics[0]
    return first.code, first.line, first.column, first.message


def test_alias_bomb(write_spec: WriteSpec) -> None:
    text = "apiVersion: meshspec/v1\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for i in range(1, 12):
        text += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n"
    code, _, _, message = _error(write_spec(text))
    assert code == "E0012"
    assert "alias" in message


def test_deep_flow_nesting(write_spec: WriteSpec) -> None:
    code, line, _, _ = _error(write_spec("a: " + "[" * 100_000 + "]" * 100_000 + "\n"))
    assert code == "E0013"
    assert line == 1


def test_deep_block_nesting(write_spec: WriteSpec) -> None:
    text = "".join(" " * i + f"k{i}:\n" for i in range(200)) + " " * 200 + "x\n"
    code, _, _, message = _error(write_spec(text))
    assert code == "E0013"
    assert "deeper than" in message


def test_duplicate_key_is_located(write_spec: WriteSpec) -> None:
    text = MINIMAL.replace("    port: 8081\n", "    port: 8081\n    port: 8082\n")
    code, line, column, message = _error(write_spec(text))
    assert (code, line, column) == ("E0011", 19, 5)
    assert "'port'" in message


def test_non_utf8_bytes(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(MINIMAL.encode().replace(b"name: shop", b"name: sh\xf6p"))
    code, line, column, message = _error(path)
    assert (code, line, column) == ("E0003", 3, 11)
    assert "0xf6" in message


def test_binary_garbage(tmp_path: Path) -> None:
    path = tmp_path / "garbage.yaml"
    path.write_bytes(bytes(range(256)) * 64)
    code, _, _, _ = _error(path)
    assert code in {"E0003", "E0004"}


def test_control_characters(write_spec: WriteSpec) -> None:
    code, line, column, _ = _error(write_spec(MINIMAL.replace("shop", "sh\x00op", 1)))
    assert (code, line, column) == ("E0004", 3, 11)


def test_file_over_the_size_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    line = b"# padding padding padding padding padding padding padding padding padding\n"
    with path.open("wb") as stream:
        stream.write(MINIMAL.encode())
        written = len(MINIMAL)
        block = line * 16384
        while written <= 100 * 1024 * 1024:
            stream.write(block)
            written += len(block)
    assert path.stat().st_size > MAX_BYTES
    code, _, _, message = _error(path)
    assert code == "E0002"
    assert "64 MiB" in message


@pytest.mark.parametrize("text", ["", "   \n\n", "# just a comment\n", "---\n"])
def test_empty_documents(write_spec: WriteSpec, text: str) -> None:
    code, _, _, _ = _error(write_spec(text))
    assert code in {"E0005", "E0014"}


def test_python_tags_are_refused(write_spec: WriteSpec) -> None:
    text = MINIMAL.replace("name: shop", "name: !!python/object/apply:os.system [echo hi]")
    code, line, column, _ = _error(write_spec(text))
    assert (code, line, column) == ("E0015", 3, 9)


def test_yaml_12_keeps_no_as_a_string(write_spec: WriteSpec) -> None:
    spec = load_spec(write_spec(MINIMAL.replace("port: 8080", "port: 8080\n    tags: [no, on]")))
    assert spec.services["web"].tags == ["no", "on"]


@pytest.mark.parametrize(
    "text",
    ["a: [1, 2", "a: b: c", "- x\ny: 1", "a: 'unterminated", "a: {b: 1", "key: *missing"],
)
def test_syntax_errors_are_located(write_spec: WriteSpec, text: str) -> None:
    code, line, _, message = _error(write_spec(text + "\n"))
    assert code == "E0010", message
    assert line >= 1


def test_directory_is_unreadable(tmp_path: Path) -> None:
    code, _, _, _ = _error(tmp_path)
    assert code == "E0001"


def test_aliases_used_sensibly_stay_within_the_budget(write_spec: WriteSpec) -> None:
    lines = [
        "apiVersion: meshspec/v1",
        "mesh: {name: m, dns: {zone: m.internal}}",
        "services:",
        "  sink:",
        "    port: 9000",
        "    instances: [{address: 10.0.0.1}]",
    ]
    policy = "{timeout: 1s, retry: {attempts: 2, on: [5xx, 503], backoff: {base: 10ms, max: 1s}}}"
    for index in range(5000):
        lines += [
            f"  s{index}:",
            "    port: 8000",
            f"    instances: [{{address: 10.1.{index // 250}.{index % 250}}}]",
        ]
        edge = f"&policy {policy}" if index == 0 else "*policy"
        lines.append(f"    upstreams: {{sink: {edge}}}")
    spec = load_spec(write_spec("\n".join(lines) + "\n"))
    assert spec.edge_count() == 5000


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (MINIMAL + "---\n", (21, 1)),  # a trailing separator: an empty second document
        ("--- {a: 1}\n--- {b: 2}\n", (2, 1)),
    ],
)
def test_a_stream_of_documents_is_named_as_such(
    text: str, where: tuple[int, int], write_spec: WriteSpec
) -> None:
    # the parser returns a stream as a list: the message must not say the top is a list
    code, line, column, message = _error(write_spec(text))
    assert (code, (line, column)) == ("E0014", where)
    assert "a second YAML document starts here (2 in the file)" in message


def test_a_top_level_list_is_still_a_list(write_spec: WriteSpec) -> None:
    code, line, column, message = _error(write_spec("- a\n- b\n"))
    assert (code, line, column) == ("E0014", 1, 1)
    assert message.endswith("found a list")


@pytest.mark.parametrize(("kind", "shown"), [("fifo", "a FIFO"), ("dev-zero", "a device")])
@pytest.mark.parametrize("command", ["validate", "compile"])
def test_a_fifo_or_a_device_as_the_spec_is_refused_at_once(
    tmp_path: Path, kind: str, shown: str, command: str
) -> None:
    spec = tmp_path / "spec.yaml"
    if kind == "fifo":
        os.mkfifo(spec)
    else:
        spec.symlink_to("/dev/zero")
    extra = ["-o", str(tmp_path / "out")] if command == "compile" else []
    # a subprocess: a hang (a FIFO without a writer) fails the test instead of blocking it
    result = subprocess.run(
        [sys.executable, "-m", "meshspec.cli", command, str(spec), *extra],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD * 3,
    )
    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert f"{spec}:0:0: error[E0001]: cannot read the file: {shown}, not a regular file" in output
    assert "Traceback" not in output and not (tmp_path / "out").exists()
