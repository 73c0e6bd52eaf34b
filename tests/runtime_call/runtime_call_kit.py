"""Helpers shared by the runtime_call tests (a plain module: test files import it by name)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.policy.call import Attempt, Call, Done, Fail, Step, Wait
from meshspec_runtime.policy.config import UpstreamPolicy
from meshspec_runtime.policy.outcome import Outcome, OutcomeKind
from meshspec_runtime.policy.upstream import UpstreamPolicies

OK = Outcome(OutcomeKind.ANSWER, latency=0.01)
REFUSED = Outcome(OutcomeKind.CONNECT_FAILURE, latency=0.001)
TIMED_OUT = Outcome(OutcomeKind.TIMEOUT, latency=0.5)
ERROR = Outcome(OutcomeKind.ERROR, latency=0.01)


def status(code: int, latency: float = 0.01) -> Outcome:
    return Outcome(OutcomeKind.ANSWER, latency=latency, status=code)


def endpoints(n: int, weights: Sequence[int] | None = None) -> list[Endpoint]:
    return [
        Endpoint(
            id=f"ep-{i}",
            address=f"10.0.0.{i + 1}",
            port=8080,
            weight=weights[i] if weights is not None else 1,
        )
        for i in range(n)
    ]


def upstream(policy: UpstreamPolicy, n: int = 3, seed: int = 1) -> UpstreamPolicies:
    return UpstreamPolicies(policy, endpoints(n), rng=random.Random(seed))


def drive(call: Call, outcomes: Iterable[Outcome], start: float = 0.0) -> tuple[Step, list[Step]]:
    """Run ``call`` with a fake clock: each attempt takes its outcome's latency (capped at its
    timeout), each Wait is slept exactly. Returns the final step and every step seen."""
    now = start
    feed = iter(outcomes)
    steps: list[Step] = []
    while True:
        step = call.next(now)
        steps.append(step)
        if isinstance(step, Attempt):
            outcome = next(feed)
            now += min(outcome.latency, step.timeout)
            call.record(now, outcome)
        elif isinstance(step, Wait):
            now += step.delay
        else:
            assert isinstance(step, Done | Fail)
            return step, steps


def attempts_of(steps: Iterable[Step]) -> list[Attempt]:
    return [s for s in steps if isinstance(s, Attempt)]
