"""Where runs execute. An engine takes tasks and hands back each result as it completes.

``LocalEngine`` (the default) uses worker processes on this machine; ``DaskEngine``
(:mod:`meshspec.sweep.engine_dask`, extra ``meshspec[dask]``) a Dask distributed cluster.
Both retry a run whose worker died once, then report it failed: never silently dropped.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from meshspec.sweep.work import RunResult, RunTask, execute

OnResult = Callable[[RunResult], None]
Work = Callable[[RunTask], RunResult]

WORKER_DIED = "the worker running it died, twice"


class Engine(Protocol):
    workers: int

    def run(self, tasks: Sequence[RunTask], on_result: OnResult) -> None:
        """Run every task; call ``on_result`` in this thread as each one completes."""

    def close(self) -> None: ...


def died(task: RunTask) -> RunResult:
    return RunResult(task.combination, task.seed, False, error=WORKER_DIED)


class LocalEngine:
    """Worker processes on this machine (``--jobs``, default: one per CPU).

    At most two tasks per worker are in flight, so when a worker dies only those few are
    suspects; each suspect is then retried once, alone in a fresh process, and reported failed
    if that process dies too.
    """

    def __init__(self, jobs: int | None = None, work: Work = execute) -> None:
        self.workers = jobs or os.cpu_count() or 1
        self._work = work
        # forkserver: workers never inherit the progress bar's thread or its locks
        self._context = multiprocessing.get_context("forkserver")

    def run(self, tasks: Sequence[RunTask], on_result: OnResult) -> None:
        queue = deque(tasks)
        while queue:
            suspects = self._run_until_broken(queue, on_result)
            for task in suspects:
                on_result(self._retry_alone(task))

    def _run_until_broken(self, queue: deque[RunTask], on_result: OnResult) -> list[RunTask]:
        """Run from ``queue`` until it is empty or a worker dies; return the suspects."""
        window = 2 * self.workers
        in_flight: dict[Future[RunResult], RunTask] = {}
        with ProcessPoolExecutor(self.workers, mp_context=self._context) as pool:
            try:
                while queue or in_flight:
                    while queue and len(in_flight) < window:
                        task = queue.popleft()
                        in_flight[pool.submit(self._work, task)] = task
                    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    broken = False
                    for future in done:
                        task = in_flight.pop(future)
                        try:
                            result = future.result()
                        except BrokenProcessPool:
                            in_flight[future] = task
                            broken = True
                            continue
                        on_result(result)
                    if broken:
                        return list(in_flight.values())
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        return []

    def _retry_alone(self, task: RunTask) -> RunResult:
        with ProcessPoolExecutor(1, mp_context=self._context) as pool:
            try:
                return pool.submit(self._work, task).result()
            except BrokenProcessPool:
                return died(task)

    def close(self) -> None:
        pass
