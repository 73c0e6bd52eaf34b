"""``meshspec schema [--output FILE]``: the JSON Schema of the mesh spec, generated from the
models (deterministic: the same models give the same bytes)."""

from __future__ import annotations

from pathlib import Path

import click

from meshspec.spec.schema import schema_text


@click.command(name="schema")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to FILE (atomically) instead of standard output.",
)
def command(output: Path | None) -> None:
    """Print the JSON Schema of mesh spec files (for editors and CI)."""
    text = schema_text()
    if output is None:
        click.echo(text, nl=False)
        return
    partial = output.with_name(output.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(output)
