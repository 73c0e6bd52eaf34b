"""Backoff between attempts, after AWS's "Exponential Backoff and Jitter" article.

Each strategy is a small immutable object (tenacity style) answering one question: how long to
wait before retry number ``retry`` (1 = the wait before the second attempt). Randomness comes
from the caller's ``random.Random``, so the same seed gives the same delays. Every delay lies
in ``[0, cap]``.
"""

from __future__ import annotations

import math
import random
from typing import Protocol

from meshspec_runtime.policy.config import BackoffConfig, Jitter


class Backoff(Protocol):
    def delay(self, retry: int, previous: float, rng: random.Random) -> float:
        """Seconds to wait before retry ``retry`` (>= 1); ``previous`` is the last delay
        returned for this call (0 before the first), which decorrelated jitter builds on."""
        ...


class _Exponential:
    """``min(cap, base * multiplier ** (retry - 1))``, without float overflow."""

    __slots__ = ("_ceilings", "_saturates_at", "base", "cap", "multiplier")

    def __init__(self, base: float, cap: float, multiplier: float = 2.0) -> None:
        if not (0 < base <= cap) or multiplier < 1:
            raise ValueError("backoff needs 0 < base <= cap and multiplier >= 1")
        self.base = base
        self.cap = cap
        self.multiplier = multiplier
        # the first exponent at which base * multiplier ** n reaches the cap
        self._saturates_at = (
            math.inf
            if multiplier == 1
            else max(0, math.ceil(math.log(cap / base) / math.log(multiplier)))
        )
        # the first ceilings, precomputed: delay() is an index, not a power
        self._ceilings = [self._ceiling(n) for n in range(int(min(64, self._saturates_at + 1)))]

    def delay(self, retry: int, previous: float, rng: random.Random) -> float:
        raise NotImplementedError

    def ceiling(self, retry: int) -> float:
        """``min(cap, base * multiplier ** (retry - 1))``."""
        n = retry - 1 if retry > 1 else 0
        ceilings = self._ceilings
        return ceilings[n] if n < len(ceilings) else self._ceiling(n)

    def _ceiling(self, n: int) -> float:
        if n >= self._saturates_at:
            return self.cap
        return min(self.cap, self.base * self.multiplier**n)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base={self.base}, cap={self.cap}, mult={self.multiplier})"


class NoJitter(_Exponential):
    """Plain capped exponential backoff: ``min(cap, base * mult ** (retry - 1))``."""

    __slots__ = ()

    def delay(self, retry: int, previous: float, rng: random.Random) -> float:
        return self.ceiling(retry)


class FullJitter(_Exponential):
    """``uniform(0, min(cap, base * mult ** (retry - 1)))``: AWS's recommended default."""

    __slots__ = ()

    def delay(self, retry: int, previous: float, rng: random.Random) -> float:
        return self.ceiling(retry) * rng.random()


class EqualJitter(_Exponential):
    """Half the exponential delay, plus a random share of the other half."""

    __slots__ = ()

    def delay(self, retry: int, previous: float, rng: random.Random) -> float:
        half = self.ceiling(retry) / 2
        return half + half * rng.random()


class DecorrelatedJitter(_Exponential):
    """``min(cap, uniform(base, previous * 3))``; the first wait builds on ``base``.

    The multiplier plays no part: the article's formula grows by up to 3x per retry.
    """

    __slots__ = ()

    def delay(self, retry: int, previous: float, rng: random.Random) -> float:
        base = self.base
        upper = (previous if previous > base else base) * 3
        value = base + (upper - base) * rng.random()
        return value if value < self.cap else self.cap


_STRATEGIES: dict[Jitter, type[_Exponential]] = {
    Jitter.FULL: FullJitter,
    Jitter.EQUAL: EqualJitter,
    Jitter.DECORRELATED: DecorrelatedJitter,
    Jitter.NONE: NoJitter,
}


def backoff_for(config: BackoffConfig) -> Backoff:
    """The strategy ``config.jitter`` names, with the config's base, cap and multiplier."""
    strategy: Backoff = _STRATEGIES[config.jitter](config.base, config.max, config.multiplier)
    return strategy
