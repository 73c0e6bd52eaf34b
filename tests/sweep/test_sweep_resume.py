"""An interrupted sweep resumes where it stopped: no run repeated, none lost. A run whose
worker dies is retried once, then reported failed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from killers import DOOMED_COMBINATION, DOOMED_SEED, die_on_doomed_run
from sweep_kit import GRID
from sweeprun import document, stored_runs, sweep

from meshspec.sweep.engine import WORKER_DIED, LocalEngine
from meshspec.sweep.plan import make_plan, read_inputs
from meshspec.sweep.run import expectations_of, pending_tasks
from meshspec.sweep.space import grid
from meshspec.sweep.store import ResultStore
from meshspec.sweep.table import summarise_combination
from meshspec.sweep.work import RunResult, execute


def _result_lines(path: Path) -> int:
    try:
        return max(0, path.read_text(encoding="utf-8").count("\n") - 1)
    except FileNotFoundError:
        return 0


def test_a_killed_sweep_resumes_without_repeating_or_losing_a_run(
    tiny: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report"
    args = [str(tiny), *GRID, "--seeds", "3", "--report", str(report)]
    process = subprocess.Popen(
        [sys.executable, "-m", "meshspec.cli", "sweep", *args, "-j", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill takes its workers too
    )
    try:
        deadline = time.monotonic() + 60
        while _result_lines(report / "runs.jsonl") < 6 and process.poll() is None:
            assert time.monotonic() < deadline, "the sweep stored no results in 60 s"
            time.sleep(0.01)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    before = stored_runs(report)
    assert 6 <= len(before) < 27, "the kill came too late to test a resume"
    code, out = sweep(*args, "-j", "2")
    assert code == 1, out
    assert f"resuming: {len(before)} runs already done" in out
    runs = stored_runs(report)
    keys = [(r["combination"], r["seed"]) for r in runs]
    assert len(keys) == len(set(keys)) == 27  # none repeated, none lost
    assert runs[: len(before)] == before
    whole = tmp_path / "whole"
    assert sweep(str(tiny), *GRID, "--seeds", "3", "-j", "2", "--report", str(whole))[0] == 1
    assert document(report) == document(whole)


def test_a_run_whose_worker_dies_is_retried_once_then_reported_failed(
    tiny: Path, tmp_path: Path
) -> None:
    plan = make_plan(read_inputs(None, tiny, None), ["defaults.retry.attempts=2,3"])
    store = ResultStore(None, plan.inputs)
    tasks = pending_tasks(plan, grid(plan.axes), (3, 4, 5), store)
    results: list[RunResult] = []
    LocalEngine(2, work=die_on_doomed_run).run(tasks, results.append)
    assert sorted((r.combination, r.seed) for r in results) == sorted(
        (t.combination, t.seed) for t in tasks
    )  # every run reported, once
    failed = [r for r in results if not r.ok]
    assert [(r.combination, r.seed, r.error) for r in failed] == [
        (DOOMED_COMBINATION, DOOMED_SEED, WORKER_DIED)
    ]
    assert all(r.totals for r in results if r.ok)


def test_a_failed_run_runs_again_when_the_sweep_resumes(tiny: Path, tmp_path: Path) -> None:
    report = tmp_path / "report"
    report.mkdir()
    plan = make_plan(read_inputs(None, tiny, None), ["defaults.retry.attempts=2,3"])
    store = ResultStore(report / "runs.jsonl", plan.inputs)
    store.add(RunResult(DOOMED_COMBINATION, 3, False, error=WORKER_DIED))
    store.close()
    code, out = sweep(
        str(tiny), "--vary", "defaults.retry.attempts=2,3", "--seeds", "1", "--report", str(report)
    )
    assert code == 1, out
    runs = stored_runs(report)
    assert [r["ok"] for r in runs if r["combination"] == DOOMED_COMBINATION] == [False, True]


def test_a_failed_run_keeps_its_combination_from_passing(tiny: Path) -> None:
    plan = make_plan(read_inputs(None, tiny, None), [])
    expectations = expectations_of(plan)
    task = pending_tasks(plan, grid(plan.axes), (3,), ResultStore(None, plan.inputs))[0]
    passing = execute(
        replace(task, overrides=("defaults.retry.attempts=4", "defaults.retry.budget.ratio=100%"))
    )
    row = summarise_combination("k", (), [passing], expectations, (), 1.0, 1)
    assert row.passed
    died = RunResult(passing.combination, 4, False, error=WORKER_DIED)
    row = summarise_combination("k", (), [passing, died], expectations, (), 1.0, 2)
    assert not row.passed and row.failed == 1 and row.seeds == 1 and row.pass_rates == (1.0, 1.0)
