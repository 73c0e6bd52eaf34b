"""Draws from a scenario's time distributions (service times, network delays)."""

from __future__ import annotations

import bisect
import functools
import random
from collections.abc import Callable

from meshspec.sim.scenario import Latency

Sampler = Callable[[], float]


def sampler(latency: Latency, rng: random.Random) -> Sampler:
    """A function drawing one time from ``latency`` (the slope is the world's business)."""
    fitted = latency.lognormal()
    if fitted is not None:
        return functools.partial(rng.lognormvariate, *fitted)
    if latency.exponential is not None:
        return functools.partial(rng.expovariate, 1.0 / latency.exponential)
    if latency.mean is not None and latency.sd is not None:
        return _truncated_normal(rng, latency.mean, latency.sd)
    if latency.quantiles is not None:
        return _empirical(rng, latency.quantile_points())
    fixed = latency.fixed or 0.0
    return lambda: fixed


def _truncated_normal(rng: random.Random, mean: float, sd: float) -> Sampler:
    """A normal distribution cut at zero (drawn again below it: the mean is positive, so at
    least half the draws are kept)."""
    gauss = rng.gauss

    def draw() -> float:
        while True:
            value = gauss(mean, sd)
            if value >= 0.0:
                return value

    return draw


def _empirical(rng: random.Random, points: tuple[tuple[float, float], ...]) -> Sampler:
    """Inverse transform sampling, linear between the given quantiles; a draw below the
    lowest (above the highest) probability given takes that quantile's time."""
    probabilities = [p for p, _ in points]
    times = [t for _, t in points]
    last = len(points) - 1
    uniform = rng.random

    def draw() -> float:
        u = uniform()
        i = bisect.bisect_right(probabilities, u)
        if i == 0:
            return times[0]
        if i > last:
            return times[last]
        p0, p1 = probabilities[i - 1], probabilities[i]
        t0, t1 = times[i - 1], times[i]
        return t0 + (t1 - t0) * (u - p0) / (p1 - p0)

    return draw
