"""``--optimize METRIC``: search the space with Optuna's TPE sampler instead of gridding it.

Each trial picks a value index per axis (so the order the values are listed in means
something to the sampler) and runs that combination with every seed; the trial's value is the
metric's mean. With ``--subject-to expectations``, a combination whose expectations do not all
pass (at ``--pass-rate``) is infeasible, through the trial's constraints. Results go
through the same store as a grid, so a repeated combination never runs twice and an
interrupted search resumes from what it had.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import Progress

from meshspec.sim.metrics import rounded
from meshspec.sweep.engine import Engine
from meshspec.sweep.plan import Plan
from meshspec.sweep.run import Settings, distance, execute, pending_tasks, row_of
from meshspec.sweep.space import Combination, combination
from meshspec.sweep.store import ResultStore
from meshspec.sweep.table import Metric, Row
from meshspec.sweep.work import RunResult

SAMPLER_SEED = 0
"""The same inputs give the same search."""


@dataclass
class Optimized:
    target: Metric
    direction: str
    constrained: bool
    points: list[Combination] = field(default_factory=list)
    """Each combination tried, in the order first tried."""
    keys: set[str] = field(default_factory=set)
    trials: int = 0
    best: tuple[Combination, Row, float] | None = None

    def as_dict(self, plan: Plan, settings: Settings) -> dict[str, Any]:
        best = None
        if self.best is not None:
            point, _, value = self.best
            best = {"combination": list(point.overrides), "value": rounded(value)}
        return {
            "metric": self.target.name,
            "direction": self.direction,
            "subject_to_expectations": self.constrained,
            "trials": self.trials,
            "combinations_tried": len(self.points),
            "best": best,
        }

    def print(self, console: Console, plan: Plan, settings: Settings) -> None:
        tried = f"{self.trials} trials, {len(self.points)} distinct combinations"
        if self.best is None:
            condition = " that passes every expectation" if self.constrained else ""
            console.print(f"optimize: no combination{condition} found ({tried})")
            return
        point, _, value = self.best
        console.print(
            f"optimize: best {self.target.name} ({self.direction}) = "
            f"{self.target.shown(value)} with {', '.join(point.overrides)} ({tried})",
            highlight=False,
        )


def optimize(
    plan: Plan,
    settings: Settings,
    store: ResultStore,
    engine: Engine,
    target: Metric,
    direction: str,
    constrained: bool,
    trials: int,
    progress: Progress,
) -> Optimized:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(
        seed=SAMPLER_SEED,
        n_startup_trials=max(1, min(10, trials // 3)),
    )
    study = optuna.create_study(
        direction="maximize" if direction == "max" else "minimize", sampler=sampler
    )
    index = [m.name for m in settings.metrics].index(target.name)
    seeds = len(settings.seeds)
    batch = max(1, math.ceil(engine.workers / seeds))
    out = Optimized(target, direction, constrained)
    bar = progress.add_task(f"optimizing {target.name}", total=trials * seeds)

    def arrived(_: RunResult) -> None:
        progress.advance(bar)

    while out.trials < trials:
        asked = [study.ask() for _ in range(min(batch, trials - out.trials))]
        points = [
            combination(
                plan.axes,
                [t.suggest_int(a.path, 0, len(a.values) - 1) for a in plan.axes],
            )
            for t in asked
        ]
        tasks = pending_tasks(plan, points, settings.seeds, store)
        progress.advance(bar, len(points) * seeds - len(tasks))
        execute(engine, tasks, store, arrived)
        for trial, point in zip(asked, points, strict=True):
            row = row_of(plan, point, store, settings)
            value = row.means[index][0]
            if constrained:  # feasible when every value is zero or less
                for number, rate in enumerate(row.pass_rates, start=1):
                    trial.set_constraint(f"E{number}", settings.required_pass_rate - rate)
                trial.set_constraint("failed_runs", float(row.failed))
            if value is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, value)
            out.trials += 1
            if point.key not in out.keys:
                out.keys.add(point.key)
                out.points.append(point)
            if value is not None and (row.passed or not constrained):
                out.best = _better(plan, out.best, (point, row, value), direction)
    return out


def _better(
    plan: Plan,
    best: tuple[Combination, Row, float] | None,
    candidate: tuple[Combination, Row, float],
    direction: str,
) -> tuple[Combination, Row, float]:
    """The better value; on a tie, the combination nearer the spec's own settings."""
    if best is None:
        return candidate
    sign = 1.0 if direction == "min" else -1.0

    def rank(item: tuple[Combination, Row, float]) -> tuple[float, tuple[int, float], Any]:
        return sign * item[2], distance(plan, item[0]), item[0].indexes

    return min(best, candidate, key=rank)
