"""``meshspec schema [--scenario] [--output FILE]``: the JSON Schema of mesh specs (or of
failure scenarios), generated from the models (deterministic: the same models give the same
bytes)."""

from __future__ import annotations

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
    partial = output.with_name(output.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(output)
