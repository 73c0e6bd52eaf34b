"""Runs on a Dask distributed cluster (``pip install 'meshspec[dask]'``).

Each task goes to the scheduler as data (a :class:`~meshspec.sweep.work.RunTask`: the spec's
and scenario's text, the overrides, the seed); the workers need only meshspec installed.
Results are gathered as they complete.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from meshspec.sweep.engine import OnResult, Work, died
from meshspec.sweep.work import RunTask, execute


class EngineUnavailable(Exception):
    """The engine's package is missing or its cluster cannot be reached."""


class DaskEngine:
    """A client of the scheduler at ``address`` (``tcp://host:8786``).

    A run whose worker dies is resubmitted once (on top of whatever the scheduler's own
    ``allowed-failures`` does), then reported failed.
    """

    def __init__(self, address: str, work: Work = execute, timeout: float = 20.0) -> None:
        try:
            self._distributed: Any = importlib.import_module("distributed")
        except ImportError:
            raise EngineUnavailable(
                "--engine dask needs Dask distributed: pip install 'meshspec[dask]'"
            ) from None
        try:
            self._client: Any = self._distributed.Client(
                address, timeout=timeout, set_as_default=False
            )
        except (OSError, TimeoutError, ValueError) as error:
            raise EngineUnavailable(f"cannot reach the Dask scheduler {address}: {error}") from None
        self._work = work
        self.workers = max(1, sum(self._client.nthreads().values()))

    def run(self, tasks: Sequence[RunTask], on_result: OnResult) -> None:
        client = self._client
        submitted: dict[str, tuple[Any, RunTask, int]] = {}

        def submit(task: RunTask, attempt: int) -> Any:
            future = client.submit(self._work, task, pure=False)
            submitted[future.key] = (future, task, attempt)
            return future

        pending = self._distributed.as_completed(
            [submit(t, 1) for t in tasks], loop=client.loop, with_results=False
        )
        try:
            for future in pending:
                _, task, attempt = submitted.pop(future.key)
                if future.status == "finished":
                    on_result(future.result())
                elif attempt == 1:
                    pending.add(submit(task, 2))
                else:
                    on_result(died(task))
                future.release()
        except BaseException:
            client.cancel([future for future, _, _ in submitted.values()])
            raise

    def close(self) -> None:
        self._client.close()
