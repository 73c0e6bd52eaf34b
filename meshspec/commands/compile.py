"""``meshspec compile SPEC -o DIR``: write the versioned runtime bundle of a spec."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from meshspec.compile import compile_spec
from meshspec.compile.writer import OutputError
from meshspec.spec import SpecError

EXIT_INVALID = 1
EXIT_USAGE = 2


def report_spec_error(error: SpecError, output: str = "text") -> int:
    """Print every diagnostic as ``meshspec validate`` does (to stderr); return the exit
    status."""
    for diagnostic in error.diagnostics:
        text = diagnostic.format_github() if output == "github" else diagnostic.format()
        click.echo(text, err=True)
    return EXIT_USAGE if error.is_usage_error else EXIT_INVALID


@click.command("compile")
@click.argument("spec", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--env", "env", metavar="ENV", help="Apply this environment's overlay.")
@click.option(
    "--set",
    "overrides",
    metavar="KEY=VALUE",
    multiple=True,
    help="Override one spec value (repeatable), e.g. --set services.web.port=8081.",
)
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Bundle home to publish into: OUT/current -> OUT/versions/<version>, swapped atomically.",
)
@click.option(
    "--previous",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Bundle home or version folder to continue the DNS SOA serial from (as well as "
    "the versions at --output).",
)
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "github"]),
    default="text",
    show_default=True,
    help="How to print spec errors: FILE:LINE:COL lines, or GitHub workflow annotations.",
)
def command(
    spec: Path,
    env: str | None,
    overrides: tuple[str, ...],
    out: Path,
    previous: Path | None,
    output: str,
) -> None:
    """Compile SPEC into a versioned runtime bundle in --output."""
    try:
        result = compile_spec(spec, out, env=env, overrides=overrides, previous=previous)
    except SpecError as error:
        sys.exit(report_spec_error(error, output))
    except OutputError as error:
        click.echo(f"meshspec compile: {error}", err=True)
        sys.exit(EXIT_USAGE)
    except OSError as error:
        click.echo(f"meshspec compile: {error.filename or spec}: {error.strerror}", err=True)
        sys.exit(EXIT_USAGE)
    state = "unchanged" if result.unchanged else "new version"
    click.echo(
        f"bundle {result.version} ({state}) written to {result.out}: {result.files} files, "
        f"DNS serial {result.serial}"
    )
