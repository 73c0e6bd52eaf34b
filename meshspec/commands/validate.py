"""``meshspec validate FILE... [--env E] [--set K=V]... [--format text|json|github]``.

Prints one success line per valid file, or every diagnostic of every invalid file, to stdout.
Exit status: 0 all valid, 1 some file invalid, 2 a usage error or an unreadable file.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from meshspec.spec.diagnostics import Diagnostic, SpecError
from meshspec.spec.loader import check_spec_file


def _emit(diagnostics: list[Diagnostic], output: str) -> None:
    for diagnostic in diagnostics:
        if output == "github":
            click.echo(diagnostic.format_github())
        else:
            click.echo(diagnostic.format())


@click.command(name="validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--env", "env", default=None, help="Apply this environment's overlay only.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one value (VALUE is YAML), e.g. services.web.port=8081.",
)
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="text: FILE:LINE:COL lines; json: one document; github: workflow annotations.",
)
def command(
    files: tuple[Path, ...], env: str | None, overrides: tuple[str, ...], output: str
) -> None:
    """Check mesh spec FILES; report every problem with its location.

    Without --env, every environment of a file is checked as well. Exit status: 0 all
    valid, 1 some file invalid, 2 a usage error or an unreadable file.
    """
    status = 0
    report: list[dict[str, object]] = []
    for path in files:
        shown = str(path)
        try:
            spec = check_spec_file(path, env=env, overrides=overrides, display=shown)
        except SpecError as error:
            status = max(status, 2 if error.is_usage_error else 1)
            if output == "json":
                report.append(
                    {
                        "file": shown,
                        "valid": False,
                        "diagnostics": [d.as_dict() for d in error.diagnostics],
                    }
                )
            else:
                _emit(error.diagnostics, output)
            continue
        services, edges = len(spec.services), spec.edge_count()
        if output == "json":
            report.append(
                {
                    "file": shown,
                    "valid": True,
                    "services": services,
                    "edges": edges,
                    "diagnostics": [],
                }
            )
        else:
            where = f" (environment {env})" if env else ""
            counts = f"{_plural(services, 'service')}, {_plural(edges, 'edge')}"
            click.echo(f"{shown}: valid{where} ({counts})")
    if output == "json":
        click.echo(json.dumps({"files": report}, indent=2))
    raise SystemExit(status)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
