"""Service behaviour, resolved: the scenario's ``default`` merged under each service's entry."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from meshspec.sim.distributions import sampler
from meshspec.sim.scenario import Behaviour, Latency

DEFAULT_LATENCY = Latency.model_validate({"fixed": "1ms"})
_T = TypeVar("_T")


def _pick(own: _T | None, default: _T | None, fallback: _T) -> _T:
    return own if own is not None else default if default is not None else fallback


@dataclass(frozen=True, slots=True)
class ServiceBehaviour:
    latency: Latency
    concurrency: float
    """math.inf when unlimited."""
    queue: float
    """math.inf when unlimited."""
    errors: float
    hangs: float
    abandon: bool
    calls: dict[str, float]
    """Fan-out probability per upstream (1.0 when the scenario does not say)."""

    def sampler(self, rng: random.Random) -> Callable[[], float]:
        """A function drawing one base service time (before load and faults)."""
        return sampler(self.latency, rng)


DEFAULT_KEY = "default"


def resolve_behaviour(
    section: dict[str, Behaviour], service: str, upstreams: list[str]
) -> ServiceBehaviour:
    own = section.get(service, Behaviour())
    base = section.get(DEFAULT_KEY, Behaviour())

    return ServiceBehaviour(
        latency=_pick(own.latency, base.latency, DEFAULT_LATENCY),
        concurrency=float(_pick(own.concurrency, base.concurrency, math.inf)),
        queue=float(_pick(own.queue, base.queue, math.inf)),
        errors=_pick(own.errors, base.errors, 0.0),
        hangs=_pick(own.hangs, base.hangs, 0.0),
        abandon=_pick(own.abandon, base.abandon, False),
        calls={up: own.calls.get(up, 1.0) for up in upstreams},
    )
