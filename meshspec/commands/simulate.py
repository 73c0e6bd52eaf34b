"""``meshspec simulate [SPEC] SCENARIO``: replay a failure scenario against the policy code.

Exit codes: 0 every expectation passed; 1 an expectation failed; 2 the input is invalid (a
located error for each problem), the options are wrong, or alert expectations cannot be
evaluated (no promtool, or promtool failed).
"""

from __future__ import annotations

import atexit
import gc
import sys
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from meshspec.sim.alerts import AlertEvaluationError, AlertsUnavailable
from meshspec.sim.caps import MAX_JOBS, MAX_SEED, MAX_SEEDS
from meshspec.sim.report import ReportFolderError, check_report_folder, to_json, write_report
from meshspec.sim.runner import Source, build_report, compare_runs, run_seeds, verdicts
from meshspec.spec.diagnostics import SpecError

if TYPE_CHECKING:
    from rich.console import Console

PathArg = click.Path(exists=False, dir_okay=False, path_type=Path)

# When the process exits, the interpreter's collections would walk everything still alive
# (the mesh, the world, the report): a sixth of the CPU of a 1,000-service run, for nothing.
# Frozen, they are skipped. (An exit handler: a test that invokes the command in process is
# not affected until its own process exits.)
atexit.register(gc.freeze)


@click.command("simulate")
@click.argument("paths", nargs=-1, required=True, type=PathArg, metavar="[SPEC] SCENARIO")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write report.json, report.html and plots/ into this folder.",
)
@click.option(
    "--seed", type=click.IntRange(min=0, max=MAX_SEED), help="Override the scenario's seed."
)
@click.option(
    "--seeds",
    type=click.IntRange(min=1, max=MAX_SEEDS),
    default=1,
    show_default=True,
    help="Run this many seeds (seed, seed+1, ...) and report means with 95% CIs.",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1, max=MAX_JOBS),
    default=1,
    show_default=True,
    help="Worker processes for --seeds.",
)
@click.option(
    "--compare",
    "compare_spec",
    type=PathArg,
    help="Also run this spec under the same scenario and seeds; show the deltas.",
)
@click.option("--env", help="Environment overlay of the spec.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="Override a spec value (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print report.json to stdout instead.")
def command(
    paths: tuple[Path, ...],
    report_dir: Path | None,
    seed: int | None,
    seeds: int,
    jobs: int,
    compare_spec: Path | None,
    env: str | None,
    overrides: tuple[str, ...],
    as_json: bool,
) -> None:
    """Replay SCENARIO against SPEC (default: the mesh the scenario names)."""
    if len(paths) > 2:
        raise click.UsageError("expected [SPEC] SCENARIO")
    spec_path, scenario_path = (paths[0], paths[1]) if len(paths) == 2 else (None, paths[0])
    source = Source(scenario_path, spec_path, env, overrides)
    try:
        loaded, mesh = source.load()
        other = None
        if compare_spec is not None:
            other_source = Source(scenario_path, compare_spec, env, overrides)
            other = other_source.load()
        alerts = source.alert_rules(loaded, mesh)  # before the runs: promtool is needed
    except SpecError as error:
        for diagnostic in error.diagnostics:
            click.echo(diagnostic.format(), err=True)  # one line each, never wrapped
        sys.exit(2)
    except AlertsUnavailable as error:
        click.echo(f"meshspec simulate: {error}", err=True)
        sys.exit(2)
    if report_dir is not None:
        try:  # before the runs: a report folder that cannot be made must not cost a simulation
            check_report_folder(report_dir)
            report_dir.mkdir(parents=True, exist_ok=True)
        except ReportFolderError as error:
            _exit_refused(report_dir, error)
        except OSError as error:
            _exit_unwritable(report_dir, error)
    first = seed if seed is not None else loaded.scenario.seed
    seed_list = list(range(first, first + seeds))
    console: Console | None = None  # --json: no tables, no bar (rich is not even imported)
    if not as_json:
        from rich.console import Console

        # Wide enough for the tables when piped into a CI log.
        console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    show_progress = console is not None and console.is_terminal
    runs = len(seed_list) * (2 if other is not None else 1)
    started = time.monotonic()
    with _progress_bar(console if show_progress else None) as progress:
        duration = loaded.scenario.duration
        single = runs == 1 or jobs <= 1
        total = duration * runs if single else runs
        task = progress.add_task(f"simulating {loaded.scenario.name}", total=total, visible=False)
        done = [0.0]

        def tick(now: float) -> None:
            # Show the bar only once the run has taken more than a moment.
            if time.monotonic() - started > 1.0:
                progress.update(task, completed=done[0] + now, visible=True)

        def finished() -> None:
            done[0] += duration if single else 1
            visible = time.monotonic() - started > 1.0
            progress.update(task, completed=done[0], visible=visible)

        summaries = run_seeds(
            source,
            seed_list,
            jobs,
            loaded=(loaded, mesh),
            progress=tick if single and show_progress else None,
            on_done=finished,
        )
        compare = None
        if other is not None:
            other_summaries = run_seeds(
                Source(scenario_path, compare_spec, env, overrides),
                seed_list,
                jobs,
                loaded=other,
                progress=tick if single and show_progress else None,
                on_done=finished,
            )
            compare = compare_runs(summaries, other_summaries)
    try:
        results = verdicts(loaded, summaries, alerts)
    except AlertEvaluationError as error:
        click.echo(f"meshspec simulate: evaluating the alert expectations: {error}", err=True)
        sys.exit(2)
    report = build_report(loaded, mesh, seed_list, summaries, results, compare)
    if console is None:
        click.echo(to_json(report), nl=False)
    else:
        from meshspec.sim.console import print_summary

        print_summary(console, report, results)
    if report_dir is not None:
        try:
            html = write_report(report_dir, report)
        except ReportFolderError as error:
            _exit_refused(report_dir, error)
        except OSError as error:
            _exit_unwritable(report_dir, error)
        if console is None:
            click.echo(f"report: {html}", err=True)
        else:
            console.print(f"report: {html}")
    sys.exit(0 if report["passed"] else 1)


class _NoBar:
    """What the run reports progress to when no bar is shown."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def add_task(self, description: str, **_: Any) -> int:
        return 0

    def update(self, task: int, **_: Any) -> None:
        return None


def _progress_bar(console: Console | None) -> AbstractContextManager[Any]:
    """A transient progress bar on ``console``; None: no bar."""
    if console is None:
        return _NoBar()
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def _exit_unwritable(report_dir: Path, error: OSError) -> NoReturn:
    click.echo(
        f"meshspec simulate: --report {report_dir}: {error.filename or report_dir}: "
        f"{error.strerror}",
        err=True,
    )
    sys.exit(2)


def _exit_refused(report_dir: Path, error: ReportFolderError) -> NoReturn:
    click.echo(f"meshspec simulate: --report {report_dir}: {error}", err=True)
    sys.exit(2)
