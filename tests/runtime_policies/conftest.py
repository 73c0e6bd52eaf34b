from __future__ import annotations

from collections.abc import Callable

import pytest
from meshspec_runtime.policy.breaker import BreakerState

Transition = tuple[BreakerState, BreakerState, float]


@pytest.fixture
def transitions() -> tuple[list[Transition], Callable[[BreakerState, BreakerState, float], None]]:
    """A list of breaker transitions and a listener that appends to it."""
    seen: list[Transition] = []

    def listener(old: BreakerState, new: BreakerState, now: float) -> None:
        seen.append((old, new, now))

    return seen, listener
