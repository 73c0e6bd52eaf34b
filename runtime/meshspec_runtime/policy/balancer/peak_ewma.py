"""Peak EWMA (Finagle, Linkerd): prefer hosts that have been fast lately and are not busy.

Each host keeps an exponentially weighted moving average of its latency that jumps up to any
higher observation at once (peak-sensitive) and decays towards new, lower observations with
time constant ``ewma_decay``; reading the cost also decays it, so a host that was slow long ago
gets another chance. Cost = ewma x (active + 1); a host with no measurement yet but attempts
in flight costs a large penalty so that a cold host is not flooded. The pick is the cheapest of
``choices`` distinct weighted random candidates (P2C by default), as in Finagle.
"""

from __future__ import annotations

from math import exp, floor

from meshspec_runtime.policy.balancer.base import Balancer, Host, extra_draws, sampler

PENALTY = 1e9
"""Cost of a host with attempts in flight and no latency measurement yet (Finagle's idea)."""


class PeakEwma(Balancer):
    __slots__ = ("_extra", "_pair", "_plan", "_rate")

    _pair: tuple[tuple[Host, ...], int, int] | None

    def _rebuild(self, pool: tuple[Host, ...]) -> None:
        self._extra = extra_draws(self.config.choices)
        self._rate = -1.0 / self.config.ewma_decay
        """``exp(elapsed * rate)`` is the decay over ``elapsed`` seconds."""
        size = len(pool)
        uniform_pair = self.config.choices == 2 and len({h.weight for h in pool}) <= 1
        # two distinct uniform candidates are drawn directly: no sampler then
        draw = None if uniform_pair and size > 1 else sampler(pool, self._rng)
        self._plan = (pool, draw, uniform_pair)
        # two distinct uniform candidates from one draw: ``both`` in [0, size * (size - 1))
        # gives the first, ``both % size``, and how far on the other is, ``both // size``
        # (exact while size**2 stays far below 2**53). Published whole: a pick sees one pool.
        fast = uniform_pair and 1 < size < 1 << 20
        self._pair = (pool, size, size * (size - 1)) if fast else None

    def _observe(self, host: Host, latency: float, now: float) -> None:
        elapsed = now - host.stamp
        host.stamp = now
        if latency > host.ewma:
            host.ewma = latency
        elif elapsed > 0:
            weight = exp(elapsed * self._rate)
            host.ewma = host.ewma * weight + latency * (1.0 - weight)

    def cost(self, host: Host, now: float) -> float:
        self._observe(host, 0.0, now)
        if host.ewma == 0.0:
            return PENALTY * len(host.inflight)
        return host.ewma * (len(host.inflight) + 1)

    def pick(self, now: float, key: str | None = None, avoid: Host | None = None) -> Host | None:
        # a non-empty pool has been through _rebuild, which sets _pair (a slot)
        pair = self._pair if avoid is None and self.pool else None
        if pair is not None:
            # the common case, inlined: two distinct uniform candidates, and ``cost`` of each
            # (its decay towards 0 is ``ewma * weight``, the same float ``_observe`` computes)
            pool, size, count = pair
            both = floor(self._rng.random() * count)  # floor: int() for x >= 0, and cheaper
            i = both % size
            first = pool[i]
            second = pool[(i + 1 + both // size) % size]
            rate = self._rate
            ewma = first.ewma
            if ewma:
                elapsed = now - first.stamp
                if elapsed > 0:
                    ewma = first.ewma = ewma * exp(elapsed * rate)
                first_cost = ewma * (len(first.inflight) + 1)
            else:
                first_cost = PENALTY * len(first.inflight)
            first.stamp = now
            ewma = second.ewma
            if ewma:
                elapsed = now - second.stamp
                if elapsed > 0:
                    ewma = second.ewma = ewma * exp(elapsed * rate)
                second_cost = ewma * (len(second.inflight) + 1)
            else:
                second_cost = PENALTY * len(second.inflight)
            second.stamp = now
            return second if second_cost < first_cost else first
        return super().pick(now, key, avoid)

    def _pick(self, now: float, key: str | None) -> Host:
        pool, draw, uniform_pair = self._plan
        size = len(pool)
        if uniform_pair and size > 1:  # two distinct hosts, drawn exactly
            draw_float = self._rng.random
            i = int(draw_float() * size)
            j = (i + 1 + int(draw_float() * (size - 1))) % size
            first, second = pool[i], pool[j]
            return second if self.cost(second, now) < self.cost(first, now) else first
        assert draw is not None  # made for every plan that is not a uniform pair
        best = draw()
        best_cost = self.cost(best, now)
        seen = [best]
        for _ in self._extra:
            candidate = draw()
            for _ in range(8):  # distinct candidates; a few redraws are enough (else settle)
                if candidate not in seen:
                    break
                candidate = draw()
            else:
                continue
            seen.append(candidate)
            cost = self.cost(candidate, now)
            if cost < best_cost:
                best, best_cost = candidate, cost
        return best

    def on_finish(self, host: Host, latency: float, now: float) -> None:
        host.inflight.pop()
        # _observe, inlined
        elapsed = now - host.stamp
        host.stamp = now
        if latency > host.ewma:
            host.ewma = latency
        elif elapsed > 0:
            weight = exp(elapsed * self._rate)
            host.ewma = host.ewma * weight + latency * (1.0 - weight)
