"""``meshspec sweep [SPEC] SCENARIO --vary PATH=V1,V2 ...``: run every combination of the
varied settings with every seed (or search them with ``--optimize``), and tabulate each
expectation's pass rate and each metric's mean per combination.

Exit codes: 0 the spec's own settings pass every expectation across the seeds; 1 they do not;
2 bad input (a located error for each problem) or wrong options; 130 interrupted (the results
so far are kept: run the same command again to resume).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from meshspec.sim.expect import ExpectationError
from meshspec.spec.diagnostics import SpecError
from meshspec.sweep.engine import Engine, LocalEngine
from meshspec.sweep.plan import Plan, make_plan, read_inputs
from meshspec.sweep.report import heatmaps, write_report
from meshspec.sweep.run import (
    Settings,
    execute,
    expectations_of,
    nearest_passing,
    own_combination,
    pending_tasks,
    row_of,
)
from meshspec.sweep.space import grid, grid_size
from meshspec.sweep.store import FILE_NAME, ResultStore, StoreError, discard
from meshspec.sweep.summary import build_document, print_table, print_verdict
from meshspec.sweep.table import Metric, metric
from meshspec.sweep.work import RunResult, RunTask

PathArg = click.Path(exists=False, dir_okay=False, path_type=Path)
MAX_RUNS = 10_000
"""Runs (combinations x seeds) a sweep may have without --max-runs: more is likely a typo
(a 1..1000 range), and at a second or more per run, hours of cluster time."""


def fail(message: str) -> NoReturn:
    click.echo(f"meshspec sweep: {message}", err=True)
    sys.exit(2)


@click.command("sweep")
@click.argument("paths", nargs=-1, required=True, type=PathArg, metavar="[SPEC] SCENARIO")
@click.option(
    "--vary",
    "varies",
    multiple=True,
    metavar="PATH=V1,V2,...",
    help="A setting to vary and its values (YAML, as --set takes them; A..B for integers).",
)
@click.option(
    "--seeds",
    type=click.IntRange(1, 100_000),
    default=10,
    show_default=True,
    help="Seeds per combination: seed, seed+1, ...",
)
@click.option("--seed", type=click.IntRange(min=0), help="First seed (default: the scenario's).")
@click.option("--env", help="Environment overlay of the spec.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for runs.jsonl (makes the sweep resumable), sweep.json, "
    "report.html and heat maps.",
)
@click.option(
    "--fresh", is_flag=True, help="Discard the results an earlier sweep left in --report."
)
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    help="Local worker processes (default: one per CPU).",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="The Dask scheduler, e.g. tcp://10.0.0.5:8786 (--engine dask).",
)
@click.option(
    "--connect-timeout",
    type=click.FloatRange(min=0.1),
    default=20.0,
    show_default=True,
    help="Seconds to wait for the Dask scheduler.",
)
@click.option(
    "--max-runs",
    type=click.IntRange(min=1),
    default=MAX_RUNS,
    show_default=True,
    help="Refuse sweeps with more runs than this.",
)
@click.option(
    "--metric",
    "metric_names",
    multiple=True,
    metavar="SUBJECT.METRIC",
    help="Also tabulate this metric (e.g. payments.load_amplification).",
)
@click.option(
    "--pass-rate",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=1.0,
    show_default=True,
    help="Share of seeds in which each expectation must hold for a combination to pass.",
)
@click.option(
    "--optimize",
    "objective",
    metavar="SUBJECT.METRIC",
    help="Search for the best value of this metric instead of running the grid.",
)
@click.option(
    "--direction",
    type=click.Choice(["min", "max"]),
    help="For --optimize (default: max for success_rate and goodput, else min).",
)
@click.option(
    "--subject-to",
    type=click.Choice(["expectations", "nothing"]),
    default="expectations",
    show_default=True,
    help="For --optimize: only combinations that pass count as solutions.",
)
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    default=40,
    show_default=True,
    help="For --optimize: combinations to try.",
)
@click.option("--json", "as_json", is_flag=True, help="Print sweep.json to stdout instead.")
def command(
    paths: tuple[Path, ...],
    varies: tuple[str, ...],
    seeds: int,
    seed: int | None,
    env: str | None,
    report_dir: Path | None,
    fresh: bool,
    engine: str,
    jobs: int | None,
    scheduler: str | None,
    connect_timeout: float,
    max_runs: int,
    metric_names: tuple[str, ...],
    pass_rate: float,
    objective: str | None,
    direction: str | None,
    subject_to: str,
    trials: int,
    as_json: bool,
) -> None:
    """Run SCENARIO against every combination of the --vary settings, with every seed."""
    if len(paths) > 2:
        raise click.UsageError("expected [SPEC] SCENARIO")
    spec_path, scenario_path = (paths[0], paths[1]) if len(paths) == 2 else (None, paths[0])
    if engine == "dask" and scheduler is None:
        raise click.UsageError("--engine dask needs --scheduler ADDRESS (tcp://host:8786)")
    if engine != "dask" and scheduler is not None:
        raise click.UsageError("--scheduler is for --engine dask")
    try:
        plan = make_plan(read_inputs(spec_path, scenario_path, env), varies)
    except SpecError as error:
        for diagnostic in error.diagnostics:
            click.echo(diagnostic.format(), err=True)
        sys.exit(2)
    try:
        extra = tuple(metric(name) for name in metric_names)
        target = metric(objective) if objective is not None else None
    except ExpectationError as error:
        fail(f"--metric/--optimize: {error}")
    metrics = _metrics(plan, extra + ((target,) if target else ()))
    first = seed if seed is not None else plan.first_seed
    settings = Settings(tuple(range(first, first + seeds)), metrics, pass_rate)
    combinations = grid(plan.axes) if target is None else []
    own = own_combination(plan)
    points = combinations + ([own] if own.key not in {c.key for c in combinations} else [])
    runs = (len(points) if target is None else trials + 1) * seeds
    if runs > max_runs:
        what = f"{grid_size(plan.axes)} combinations" if target is None else f"{trials} trials"
        fail(
            f"{what} x {seeds} seeds = {runs} runs, more than the cap of {max_runs}; pass "
            f"--max-runs {runs} to run them all (or vary fewer values, or --optimize)"
        )
    store = _open_store(report_dir, plan, fresh)
    runner = _engine(engine, jobs, scheduler, connect_timeout)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    err = Console(stderr=True, highlight=False)
    try:
        if target is None:
            tasks = pending_tasks(plan, points, settings.seeds, store)
            _run_with_progress(console, runner, tasks, store, not as_json, plan.scenario_name)
            optimized = None
        else:
            from meshspec.sweep.optimize import optimize

            own_tasks = pending_tasks(plan, [own], settings.seeds, store)
            _run_with_progress(console, runner, own_tasks, store, not as_json, "own settings")
            with _progress(console, not as_json) as bar:
                optimized = optimize(
                    plan,
                    settings,
                    store,
                    runner,
                    target,
                    direction or _default_direction(target),
                    subject_to == "expectations",
                    trials,
                    bar,
                )
            points = [*optimized.points, *([own] if own.key not in optimized.keys else [])]
    except KeyboardInterrupt:
        done = sum(r.ok for r in store.results.values())
        where = f"; the same command resumes from {store.path}" if store.path else ""
        err.print(f"interrupted: {done} runs finished{where}")
        sys.exit(130)
    finally:
        store.close()
        runner.close()
    rows = [(p, row_of(plan, p, store, settings)) for p in points if p.key != own.key or p.indexes]
    grid_rows = [(p, r) for p, r in rows if p.indexes or not plan.axes]
    own_row = row_of(plan, own, store, settings)
    nearest = nearest_passing(plan, grid_rows)
    document = build_document(plan, settings, grid_rows, (own, own_row), nearest)
    if optimized is not None:
        document["optimize"] = optimized.as_dict(plan, settings)
    if as_json:
        import json

        click.echo(json.dumps(document, indent=1, sort_keys=True))
    else:
        print_table(console, plan, document)
        if optimized is not None:
            optimized.print(console, plan, settings)
        print_verdict(console, document)
    if report_dir is not None:
        try:
            page = write_report(report_dir, document, heatmaps(plan, grid_rows, metrics))
        except OSError as error:
            fail(f"--report {report_dir}: {error.filename or report_dir}: {error.strerror}")
        (err if as_json else console).print(f"report: {page}")
    sys.exit(0 if own_row.passed else 1)


def _metrics(plan: Plan, extra: tuple[Metric, ...]) -> tuple[Metric, ...]:
    """The metric of each expectation, then the extra ones, without repeats."""
    out: dict[str, Metric] = {}
    for exp in expectations_of(plan):
        named = metric(f"{exp.subject}.{exp.metric}")
        out.setdefault(named.name, named)
    for item in extra:
        out.setdefault(item.name, item)
    return tuple(out.values())


def _default_direction(target: Metric) -> str:
    return "max" if target.expectation.metric in ("success_rate", "goodput", "served") else "min"


def _open_store(report_dir: Path | None, plan: Plan, fresh: bool) -> ResultStore:
    if report_dir is None:
        return ResultStore(None, plan.inputs)
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        fail(f"--report {report_dir}: {error.filename or report_dir}: {error.strerror}")
    path = report_dir / FILE_NAME
    if fresh:
        discard(path)
    try:
        return ResultStore(path, plan.inputs)
    except StoreError as error:
        fail(str(error))


def _engine(name: str, jobs: int | None, scheduler: str | None, timeout: float) -> Engine:
    if name == "local":
        return LocalEngine(jobs)
    from meshspec.sweep.engine_dask import DaskEngine, EngineUnavailable

    try:
        return DaskEngine(scheduler or "", timeout=timeout)
    except EngineUnavailable as error:
        fail(str(error))


def _progress(console: Console, wanted: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not (wanted and console.is_terminal),
    )


def _run_with_progress(
    console: Console,
    engine: Engine,
    tasks: list[RunTask],
    store: ResultStore,
    wanted: bool,
    name: str,
) -> None:
    if store.resumed and wanted:
        console.print(f"resuming: {store.resumed} runs already done in {store.path}")
    with _progress(console, wanted) as progress:
        bar = progress.add_task(f"sweeping {name}", total=len(tasks))

        def arrived(_: RunResult) -> None:
            progress.advance(bar)

        execute(engine, tasks, store, arrived)
