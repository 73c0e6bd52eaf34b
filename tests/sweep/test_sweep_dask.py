"""The Dask engine on a local cluster of worker processes, started here and stopped at the end:
the same grid and seeds give exactly the numbers of the local engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import missing
from sweep_kit import GRID
from sweeprun import document, numbers, stored_runs, sweep


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    try:
        import dask
        from distributed import LocalCluster
    except ImportError:
        missing("Dask distributed is not installed: pip install -e '.[test]'")
        raise AssertionError("unreachable") from None
    # A worker that dies fails its task at once; the engine's own retry is what is tested.
    # One task per worker at a time (the default saturation, 1.1, queues a second task on a
    # one-thread worker, which then dies with the doomed run: an innocent run failed, twice).
    settings = {
        "distributed.scheduler.allowed-failures": 0,
        "distributed.scheduler.worker-saturation": 1.0,
    }
    with dask.config.set(settings):
        cluster: Any = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
    try:
        yield str(cluster.scheduler_address)
    finally:
        cluster.close()


def test_the_dask_engine_gives_the_local_engines_numbers(
    tiny: Path, tmp_path: Path, scheduler: str
) -> None:
    local, remote = tmp_path / "local", tmp_path / "dask"
    code, out = sweep(str(tiny), *GRID, "--seeds", "3", "-j", "2", "--report", str(local))
    assert code == 1, out
    code, out = sweep(
        str(tiny), *GRID, "--seeds", "3", "--engine", "dask", "--scheduler", scheduler,
        "--report", str(remote),
    )  # fmt: skip
    assert code == 1, out
    assert document(remote) == document(local)
    assert sorted(map(numbers, stored_runs(remote))) == sorted(map(numbers, stored_runs(local)))
    assert len(stored_runs(remote)) == 27


def test_a_run_whose_dask_worker_dies_is_retried_once_then_failed(
    tiny: Path, scheduler: str
) -> None:
    import cloudpickle
    import killers

    from meshspec.sweep.engine import WORKER_DIED
    from meshspec.sweep.engine_dask import DaskEngine
    from meshspec.sweep.plan import make_plan, read_inputs
    from meshspec.sweep.run import pending_tasks
    from meshspec.sweep.space import grid
    from meshspec.sweep.store import ResultStore
    from meshspec.sweep.work import RunResult

    cloudpickle.register_pickle_by_value(killers)  # the workers cannot import tests/
    plan = make_plan(read_inputs(None, tiny, None), ["defaults.retry.attempts=2,3"])
    tasks = pending_tasks(plan, grid(plan.axes), (3, 4), ResultStore(None, plan.inputs))
    results: list[RunResult] = []
    engine = DaskEngine(scheduler, work=killers.die_on_doomed_run)
    try:
        engine.run(tasks, results.append)
    finally:
        engine.close()
    assert sorted((r.combination, r.seed) for r in results) == sorted(
        (t.combination, t.seed) for t in tasks
    )
    failed = [(r.combination, r.seed, r.error) for r in results if not r.ok]
    assert failed == [(killers.DOOMED_COMBINATION, killers.DOOMED_SEED, WORKER_DIED)]


def test_an_unreachable_scheduler_is_a_clear_error(tiny: Path) -> None:
    from support import free_port

    address = f"tcp://127.0.0.1:{free_port()}"
    code, out = sweep(
        str(tiny), "--engine", "dask", "--scheduler", address, "--seeds", "1",
        "--connect-timeout", "1",
    )  # fmt: skip
    assert code == 2
    assert f"cannot reach the Dask scheduler {address}" in out
