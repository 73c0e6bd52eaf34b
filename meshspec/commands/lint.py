"""``meshspec lint SPEC... [--env E] [--set K=V]... [--format text|json|github] [--deny CODE|all]``.

Warnings about policies that are each valid but do not fit together across the mesh, located
like ``validate``'s errors. Exit status: 0 no warning denied, 1 a denied warning, 2 bad
input (an invalid spec, an unreadable file, a bad option). With several SPECs, the worst.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import click

from meshspec.lint import CODES, LintReport, lint
from meshspec.spec.diagnostics import Diagnostic, SpecError
from meshspec.spec.loader import load_spec_located


def _codes(values: tuple[str, ...], option: str, *, allow_all: bool) -> frozenset[str]:
    codes: set[str] = set()
    for value in values:
        for code in (part.strip().upper() for part in value.split(",")):
            if allow_all and code == "ALL":
                codes.update(CODES)
            elif code in CODES:
                codes.add(code)
            else:
                close = difflib.get_close_matches(code, list(CODES), n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                also = " or all" if allow_all else ""
                raise click.BadParameter(
                    f"{code!r} is not a lint code{hint} (expected W0001-W0401{also}; "
                    "see docs/lint.md)",
                    param_hint=option,
                )
    return frozenset(codes)


@click.command(name="lint")
@click.argument(
    "spec_files", metavar="SPEC...", nargs=-1, required=True, type=click.Path(path_type=Path)
)
@click.option("--env", "env", default=None, help="Lint this environment's overlay applied.")
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
@click.option(
    "--deny",
    "deny",
    multiple=True,
    metavar="CODE|all",
    help="Exit 1 when a warning of this code (or any, with 'all') remains. Repeatable.",
)
@click.option(
    "--ignore",
    "ignore",
    multiple=True,
    metavar="CODE",
    help="Do not report this code at all. Repeatable.",
)
@click.option(
    "--max-amplification",
    type=click.FloatRange(min=1, max=1e6),
    default=None,
    help="W0101's threshold (default: the spec's lint.max_amplification, else 10).",
)
def command(
    spec_files: tuple[Path, ...],
    env: str | None,
    overrides: tuple[str, ...],
    output: str,
    deny: tuple[str, ...],
    ignore: tuple[str, ...],
    max_amplification: float | None,
) -> None:
    """Find policies in each SPEC that do not fit together: retry amplification, timeouts that
    cut retries short, breakers that cannot trip or trip on noise, unsafe retries.

    Exit status: 0 no denied warning, 1 a warning of a --deny code, 2 bad input.
    """
    denied = _codes(deny, "--deny", allow_all=True)
    ignored = _codes(ignore, "--ignore", allow_all=False)
    status = 0
    documents: list[dict[str, object]] = []
    for spec_file in spec_files:
        shown = str(spec_file)
        try:
            spec, provenance = load_spec_located(
                spec_file, env=env, overrides=overrides, display=shown
            )
        except SpecError as error:
            status = 2
            if output == "json":
                documents.append(_invalid_json(shown, error.diagnostics))
            else:
                _emit(error.diagnostics, output)
            continue
        report = lint(spec, provenance, max_amplification=max_amplification, ignore=ignored)
        failing = [w for w in report.warnings if w.code in denied]
        if failing:
            status = max(status, 1)
        if output == "json":
            documents.append(_as_json(shown, env, report, denied))
        else:
            _emit(report.warnings, output)
            if output == "text":
                click.echo(_summary(shown, env, report, len(failing)))
    if output == "json":
        click.echo(json.dumps(documents[0] if len(documents) == 1 else documents, indent=2))
    raise SystemExit(status)


def _emit(diagnostics: list[Diagnostic], output: str) -> None:
    for diagnostic in diagnostics:
        click.echo(diagnostic.format_github() if output == "github" else diagnostic.format())


def _invalid_json(shown: str, diagnostics: list[Diagnostic]) -> dict[str, object]:
    return {"file": shown, "valid": False, "diagnostics": [d.as_dict() for d in diagnostics]}


def _summary(shown: str, env: str | None, report: LintReport, denied: int) -> str:
    where = f" (environment {env})" if env else ""
    count = len(report.warnings)
    found = "no warnings" if count == 0 else f"{count} warning{'s' if count > 1 else ''}"
    extra = []
    if report.suppressed:
        extra.append(f"{report.suppressed} suppressed")
    if denied:
        extra.append(f"{denied} denied")
    return f"{shown}{where}: {found}" + (f" ({', '.join(extra)})" if extra else "")


def _as_json(
    shown: str, env: str | None, report: LintReport, denied: frozenset[str]
) -> dict[str, object]:
    return {
        "file": shown,
        "valid": True,
        "environment": env,
        "warnings": [{**w.as_dict(), "denied": w.code in denied} for w in report.warnings],
        "suppressed": report.suppressed,
        "max_amplification": report.threshold,
        "amplification": {name: a.as_dict() for name, a in report.amplification.items()},
    }
