"""Load balancers: one module per strategy, all over the same ``Balancer`` base."""

from __future__ import annotations

import random
from collections.abc import Sequence

from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.policy.balancer.base import Balancer, Host
from meshspec_runtime.policy.balancer.least_request import LeastRequest
from meshspec_runtime.policy.balancer.maglev import Maglev
from meshspec_runtime.policy.balancer.peak_ewma import PeakEwma
from meshspec_runtime.policy.balancer.random_choice import RandomChoice
from meshspec_runtime.policy.balancer.ring_hash import RingHash
from meshspec_runtime.policy.balancer.round_robin import RoundRobin
from meshspec_runtime.policy.balancer.weighted_round_robin import WeightedRoundRobin
from meshspec_runtime.policy.config import LoadBalancerConfig, Strategy

STRATEGIES: dict[Strategy, type[Balancer]] = {
    Strategy.ROUND_ROBIN: RoundRobin,
    Strategy.WEIGHTED_ROUND_ROBIN: WeightedRoundRobin,
    Strategy.RANDOM: RandomChoice,
    Strategy.LEAST_REQUEST: LeastRequest,
    Strategy.PEAK_EWMA: PeakEwma,
    Strategy.RING_HASH: RingHash,
    Strategy.MAGLEV: Maglev,
}


def balancer_for(
    config: LoadBalancerConfig, endpoints: Sequence[Endpoint], rng: random.Random
) -> Balancer:
    """The balancer ``config.strategy`` names, over ``endpoints``."""
    return STRATEGIES[config.strategy](config, endpoints, rng)


__all__ = [
    "STRATEGIES",
    "Balancer",
    "Host",
    "LeastRequest",
    "Maglev",
    "PeakEwma",
    "RandomChoice",
    "RingHash",
    "RoundRobin",
    "WeightedRoundRobin",
    "balancer_for",
]
