"""A work function whose worker process dies on one chosen run (for the retry tests)."""

from __future__ import annotations

import os

from meshspec.sweep.work import RunResult, RunTask, execute

DOOMED_SEED = 4
"""The run with this seed and the last combination kills its worker, every time."""
DOOMED_COMBINATION = '["defaults.retry.attempts=3"]'


def die_on_doomed_run(task: RunTask) -> RunResult:
    if task.seed == DOOMED_SEED and task.combination == DOOMED_COMBINATION:
        os._exit(17)
    return execute(task)
