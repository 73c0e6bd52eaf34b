"""``meshspec diff OLD NEW``: what changed between two bundles or specs (auto-detected).

A folder is read as a bundle (a bundle home, through its ``current``, or a version folder;
verified as the runtime verifies it); a file is compiled as a spec, in memory. Exit status:
0 equal, 1 different, 2 bad input.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import click
import orjson
from meshspec_runtime.loader import BundleError, load_bundle_files

from meshspec.commands.compile import report_spec_error
from meshspec.compile import compile_spec_in_memory
from meshspec.compile.diff import diff
from meshspec.spec import SpecError

EXIT_EQUAL = 0
EXIT_DIFFERENT = 1
EXIT_BAD_INPUT = 2


@dataclass(frozen=True, slots=True)
class Side:
    kind: str
    """``bundle`` or ``spec``."""
    path: Path
    env: str | None
    version: str
    files: Mapping[str, bytes]

    def describe(self) -> dict[str, str | None]:
        return {"kind": self.kind, "path": str(self.path), "env": self.env, "version": self.version}


class BadInput(Exception):
    """Already reported on stderr."""


def read_side(path: Path, env: str | None) -> Side:
    if path.is_dir():
        if env is not None:
            raise click.UsageError(f"{path} is a bundle: --env applies to specs only")
        try:  # the bytes compared are the bytes verified, read once from one pinned version
            bundle, files = load_bundle_files(path)
        except BundleError as error:
            click.echo(f"meshspec diff: {error}", err=True)
            raise BadInput from None
        return Side("bundle", path, None, bundle.version, files)
    try:
        built = compile_spec_in_memory(path, env=env)
    except SpecError as error:
        report_spec_error(error)
        raise BadInput from None
    except OSError as error:
        click.echo(f"meshspec diff: {path}: {error.strerror}", err=True)
        raise BadInput from None
    return Side("spec", path, env, built.version, built.files)


@click.command("diff")
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option("--env", help="Environment applied to both sides (specs only).")
@click.option("--old-env", help="Environment applied to OLD (a spec); overrides --env.")
@click.option("--new-env", help="Environment applied to NEW (a spec); overrides --env.")
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="How to print the changes.",
)
def command(
    old: Path,
    new: Path,
    env: str | None,
    old_env: str | None,
    new_env: str | None,
    output: str,
) -> None:
    """Show what changed from OLD to NEW (each a bundle home, a version folder or a spec file).

    Exit status: 0 when they are equal, 1 when they differ, 2 on bad input.
    """
    try:
        before = read_side(old, old_env or env)
        after = read_side(new, new_env or env)
    except BadInput:
        sys.exit(EXIT_BAD_INPUT)
    try:
        changes = diff(before.files, after.files)
    except (KeyError, ValueError, TypeError) as error:  # a hand-made folder, not our bundle
        click.echo(f"meshspec diff: cannot compare: unexpected content ({error!r})", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if output == "json":
        document = {
            "old": before.describe(),
            "new": after.describe(),
            "equal": not changes,
            "changes": [change.as_json() for change in changes],
        }
        click.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(f"--- {before.kind} {before.path} (version {before.version})")
        click.echo(f"+++ {after.kind} {after.path} (version {after.version})")
        for change in changes:
            click.echo(change.text())
        click.echo(f"{len(changes)} change(s)" if changes else "no changes")
    sys.exit(EXIT_DIFFERENT if changes else EXIT_EQUAL)
