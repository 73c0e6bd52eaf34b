"""A deliberately naive breaker: full outcome history, recomputed rates, no ring buffers.

The property tests drive it and the real CircuitBreaker with the same operations and compare
states; it follows the rules written in docs/policies.md, not the implementation's code.
"""

from __future__ import annotations

import math

from meshspec_runtime.policy.config import CircuitBreakerConfig, CountWindow


class ModelBreaker:
    def __init__(self, config: CircuitBreakerConfig) -> None:
        self.c = config
        self.state = "closed"
        self.history: list[tuple[int, bool, bool]] = []  # (second, failed, slow)
        self.newest_second = -math.inf
        self.in_row = 0
        self.open_time = config.open_for
        self.open_until = math.inf
        self.probes_admitted = 0
        self.probes_in_flight = 0
        self.probe_results: list[tuple[bool, bool]] = []
        self.epoch = 0  # bumped on every transition; tickets from older epochs are ignored

    def refresh(self, now: float) -> None:
        if self.state == "open" and now >= self.open_until:
            self.state = "half_open"
            self.epoch += 1
            self.probes_admitted = self.probes_in_flight = 0
            self.probe_results = []

    def acquire(self, now: float) -> bool:
        self.refresh(now)
        if self.state == "closed":
            return True
        if self.state == "open":
            return False
        if self.probes_admitted < self.c.half_open_calls:
            self.probes_admitted += 1
            self.probes_in_flight += 1
            return True
        return False

    def cancel(self, ticket: int | None = None) -> None:
        if ticket is not None and ticket != self.epoch:
            return
        if self.state == "half_open" and self.probes_in_flight > 0:
            self.probes_in_flight -= 1
            self.probes_admitted -= 1

    def record(self, now: float, failed: bool, duration: float, ticket: int | None = None) -> None:
        if ticket is not None and ticket != self.epoch:
            return
        slow = self.c.slow_calls is not None and duration > self.c.slow_calls.over
        slow_rate = self.c.slow_calls.rate if self.c.slow_calls is not None else math.inf
        if self.state == "closed":
            if self.c.mode == "consecutive":
                self.in_row = self.in_row + 1 if failed else 0
                if self.in_row >= self.c.consecutive_failures:
                    self.open(now, after_probe=False)
                return
            second = max(math.floor(now), self.newest_second)
            self.newest_second = second
            self.history.append((second, failed, slow))
            if isinstance(self.c.window, CountWindow):
                window = self.history[-self.c.window.size :]
            else:
                window = [h for h in self.history if h[0] > second - self.c.window.size]
            calls = len(window)
            failures = sum(1 for h in window if h[1])
            slows = sum(1 for h in window if h[2])
            if calls >= self.c.minimum_calls and (
                failures / calls >= self.c.failure_rate or slows / calls >= slow_rate
            ):
                self.open(now, after_probe=False)
        elif self.state == "half_open" and self.probes_in_flight > 0:
            self.probes_in_flight -= 1
            self.probe_results.append((failed, slow))
            n = self.c.half_open_calls
            failures = sum(1 for f, _ in self.probe_results if f)
            slows = sum(1 for _, s in self.probe_results if s)
            pending = n - len(self.probe_results)
            if self.c.mode == "consecutive":
                if failures:
                    self.open(now, after_probe=True)
                elif pending <= 0:
                    self.close()
            elif failures / n >= self.c.failure_rate or slows / n >= slow_rate:
                self.open(now, after_probe=True)
            elif (failures + pending) / n < self.c.failure_rate and (
                slows + pending
            ) / n < slow_rate:
                self.close()

    def open(self, now: float, *, after_probe: bool) -> None:
        if after_probe and self.c.open_for_max is not None:
            self.open_time = min(self.c.open_for_max, self.open_time * self.c.open_for_multiplier)
        self.state = "open"
        self.epoch += 1
        self.open_until = now + self.open_time

    def close(self) -> None:
        self.state = "closed"
        self.epoch += 1
        self.history = []
        self.newest_second = -math.inf
        self.in_row = 0
        self.open_time = self.c.open_for
        self.open_until = math.inf
