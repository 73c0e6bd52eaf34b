"""``meshspec schema -o FILE``: a regular file is replaced atomically; a link, a device or a pipe
is written through, never replaced; an unwritable place is a one-line error, exit 2."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from click.testing import CliRunner

from meshspec.commands.schema import command as schema_command
from meshspec.spec.schema import schema_text


def test_a_regular_file_is_replaced_and_no_partial_is_left(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    out.write_text("old")
    result = CliRunner().invoke(schema_command, ["-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == schema_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["schema.json"]


def test_a_symbolic_link_is_written_through(tmp_path: Path) -> None:
    target = tmp_path / "target.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    result = CliRunner().invoke(schema_command, ["-o", str(link)])
    assert result.exit_code == 0, result.output
    assert link.is_symlink()
    assert target.read_text() == schema_text()


def test_a_pipe_is_written_through(tmp_path: Path) -> None:
    # as /dev/stdout or /dev/null would be: a rename would put a regular file in its place
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = CliRunner().invoke(schema_command, ["-o", str(fifo)])
    reader.join(timeout=10)
    assert result.exit_code == 0, result.output
    assert fifo.is_fifo()
    assert received == [schema_text().encode()]


def test_a_folder_that_does_not_exist_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    out = tmp_path / "missing" / "schema.json"
    result = CliRunner().invoke(schema_command, ["-o", str(out)])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "No such file or directory" in result.output
    assert not out.parent.exists()
