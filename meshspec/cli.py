"""The ``meshspec`` command line.

Each subcommand lives in its own module under ``meshspec.commands`` and is imported only when
it runs, so ``meshspec validate`` does not pay for the simulator's imports.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util

import click

from meshspec.gcpause import collector_paused

# name -> module under meshspec.commands that defines ``command: click.Command``
COMMANDS: dict[str, str] = {
    "validate": "validate",
    "lint": "lint",
    "schema": "schema",
    "compile": "compile",
    "diff": "diff",
    "simulate": "simulate",
    "sweep": "sweep",
    "apply": "apply",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, module in COMMANDS.items() if _command_module_exists(module))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None or not _command_module_exists(module):
            return None
        # Importing a command defines thousands of long-lived objects (pydantic models, numpy):
        # the collector's passes over them find nothing, a tenth of the import's CPU. Frozen
        # once imported, later passes skip them too.
        with collector_paused():
            loaded = importlib.import_module(f"meshspec.commands.{module}")
            gc.freeze()
        command: click.Command = loaded.command
        return command


def _command_module_exists(module: str) -> bool:
    return importlib.util.find_spec(f"meshspec.commands.{module}") is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="meshspec")
def main() -> None:
    """Declare, compile and rehearse a service mesh's resilience policies."""


if __name__ == "__main__":
    main()
