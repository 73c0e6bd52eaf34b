"""``meshspec schema [--scenario] [--output FILE]``: the JSON Schema of mesh specs (or of
failure scenarios), generated from the models (deterministic: the same models give the same
bytes)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command(name="schema")
@click.option(
    "--scenario",
    is_flag=True,
    help="The schema of scenario files (meshspec simulate) instead of mesh specs.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to FILE (atomically) instead of standard output.",
)
def command(scenario: bool, output: Path | None) -> None:
    """Print the JSON Schema of mesh spec files (for editors and CI)."""
    if scenario:
        from meshspec.sim.schema import schema_text
    else:
        from meshspec.spec.schema import schema_text
    text = schema_text()
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        write_output(output, text.encode("utf-8"))
    except OSError as error:
        click.echo(f"meshspec schema: {error.filename or output}: {error.strerror}", err=True)
        sys.exit(2)


def write_output(output: Path, data: bytes) -> None:
    """Replace a regular file atomically (a ``.partial`` beside it, renamed over it); write
    through anything else (a symbolic link, ``/dev/stdout``, a pipe), which a rename would
    replace instead of writing to."""
    if output.is_symlink() or (output.exists() and not output.is_file()):
        with output.open("wb") as stream:
            stream.write(data)
        return
    partial = output.with_name(output.name + ".partial")
    try:
        partial.write_bytes(data)
        partial.replace(output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
