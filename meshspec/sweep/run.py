"""A sweep from plan to rows: the runs still missing go to the engine, each result is stored as
it arrives, and every combination (the spec's own settings too) becomes a table row."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from meshspec.sim.expect import Expectation, parse
from meshspec.sweep.engine import Engine
from meshspec.sweep.plan import Plan
from meshspec.sweep.space import Combination
from meshspec.sweep.store import ResultStore
from meshspec.sweep.table import Metric, Row, summarise_combination
from meshspec.sweep.work import RunResult, RunTask

OWN_SETTINGS = Combination((), ())
"""The spec as written, when the grid does not list its values."""


@dataclass(frozen=True)
class Settings:
    seeds: tuple[int, ...]
    metrics: tuple[Metric, ...]
    required_pass_rate: float


def expectations_of(plan: Plan) -> list[Expectation]:
    """The plan's expectations (metric ones only: ``make_plan`` refuses alert expectations)."""
    parsed = [parse(text) for text in plan.expectations]
    return [e for e in parsed if isinstance(e, Expectation)]


def own_combination(plan: Plan) -> Combination:
    return plan.baseline_combination or OWN_SETTINGS


def pending_tasks(
    plan: Plan, combinations: Sequence[Combination], seeds: Sequence[int], store: ResultStore
) -> list[RunTask]:
    """The runs not yet in the store, combination by combination (so each worker's load cache
    serves a combination's seeds)."""
    tasks = []
    seen: set[str] = set()
    for point in combinations:
        if point.key in seen:
            continue
        seen.add(point.key)
        for seed in seeds:
            if not store.done(point.key, seed):
                tasks.append(RunTask(plan.inputs, point.key, point.overrides, seed))
    return tasks


def execute(
    engine: Engine,
    tasks: Sequence[RunTask],
    store: ResultStore,
    on_result: Callable[[RunResult], None] | None = None,
) -> None:
    def arrived(result: RunResult) -> None:
        store.add(result)
        if on_result is not None:
            on_result(result)

    if tasks:
        engine.run(tasks, arrived)


def row_of(plan: Plan, point: Combination, store: ResultStore, settings: Settings) -> Row:
    results = [
        store.results[(point.key, s)] for s in settings.seeds if (point.key, s) in store.results
    ]
    return summarise_combination(
        point.key,
        point.overrides,
        results,
        expectations_of(plan),
        settings.metrics,
        settings.required_pass_rate,
        len(settings.seeds),
    )


def distance(plan: Plan, point: Combination) -> tuple[int, float]:
    """How far a combination lies from the spec's own settings: the number of settings that
    differ, then the sum of how far each moved along its axis (0..1)."""
    if not point.indexes:
        return 0, 0.0
    differ, moved = 0, 0.0
    for axis, index, own in zip(plan.axes, point.indexes, plan.baseline, strict=True):
        if own is None:
            differ, moved = differ + 1, moved + 1.0
        elif index != own:
            differ += 1
            moved += abs(index - own) / max(1, len(axis.values) - 1)
    return differ, moved


def nearest_passing(plan: Plan, rows: Sequence[tuple[Combination, Row]]) -> Combination | None:
    passing = [point for point, row in rows if row.passed]
    if not passing:
        return None
    return min(passing, key=lambda p: (distance(plan, p), p.indexes))
