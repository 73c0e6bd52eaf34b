"""``meshspec apply BUNDLE --consul ADDR [--dry-run]``: write the bundle's Consul config entries.

Shows the change set (``+`` create, ``~`` update, ``-`` delete, ``!`` conflict), then applies
it unless ``--dry-run``. Idempotent; deletes only entries an earlier apply of the same mesh
created (see ``meshspec.consul_apply``). Exit status: 0 applied (or nothing to do), 1 a
conflict was left alone, 2 bad input or Consul unreachable.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click
from meshspec_runtime.loader import BundleError, load_bundle_files

from meshspec.consul_apply import ApplyError, desired_entries, execute, plan, read_current

EXIT_OK = 0
EXIT_CONFLICT = 1
EXIT_BAD_INPUT = 2


def _client(address: str) -> Any:
    try:
        from meshspec_runtime.discovery.consul import client
    except ImportError as error:  # pragma: no cover - the runtime ships the module
        raise click.ClickException(str(error)) from None
    try:
        return client(address, os.environ.get("CONSUL_HTTP_TOKEN") or None)
    except (ImportError, ValueError) as error:
        click.echo(f"meshspec apply: {error}", err=True)
        sys.exit(EXIT_BAD_INPUT)


@click.command("apply")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option(
    "--consul",
    "address",
    default=lambda: os.environ.get("CONSUL_HTTP_ADDR", "http://127.0.0.1:8500"),
    show_default="$CONSUL_HTTP_ADDR or http://127.0.0.1:8500",
    help="The Consul agent's HTTP address.",
)
@click.option("--dry-run", is_flag=True, help="Show the change set; write nothing.")
@click.option("--adopt", is_flag=True, help="Take over entries meshspec did not create.")
def command(bundle: Path, address: str, dry_run: bool, adopt: bool) -> None:
    """Write BUNDLE's Consul config entries (a bundle home or a version folder) to Consul."""
    try:
        loaded, files = load_bundle_files(bundle)
    except BundleError as error:
        click.echo(f"meshspec apply: {error}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    consul = _client(address)
    mesh = loaded.manifest.mesh
    try:
        desired = desired_entries(files, mesh)
        changes = plan(desired, read_current(consul), mesh, adopt=adopt)
        click.echo(
            f"mesh {mesh!r} version {loaded.version} -> Consul at {address}"
            + (" (dry run: nothing written)" if dry_run else "")
        )
        for change in changes.changes:
            click.echo(change.text())
        writes = changes.writes
        click.echo(
            f"{len(writes)} change(s), {len(changes.unchanged)} unchanged, "
            f"{len(changes.conflicts)} conflict(s)"
        )
        if not dry_run:
            execute(consul, writes)
    except ApplyError as error:
        click.echo(f"meshspec apply: {error}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except Exception as error:  # py-consul raises requests' errors and its own alike
        click.echo(
            f"meshspec apply: Consul at {address}: {type(error).__name__}: {error}", err=True
        )
        sys.exit(EXIT_BAD_INPUT)
    finally:
        consul.http.close()
    sys.exit(EXIT_CONFLICT if changes.conflicts else EXIT_OK)
