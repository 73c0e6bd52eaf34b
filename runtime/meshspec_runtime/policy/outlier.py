"""Outlier detection with Envoy's consecutive-5xx semantics.

An endpoint that fails ``consecutive_failures`` times in a row (the caller decides what a
failure is) is ejected for ``base_ejection * n`` seconds, ``n`` being how many times it has been
ejected (this one included), capped at ``max_ejection``. When its time is up it returns with its
consecutive counter at zero. Like Envoy, reaching the threshold resets the counter whether or
not the ejection happens, so a refused ejection needs another full run of failures.

Share rule (Envoy's ``max_ejection_percent``): an ejection is allowed when no endpoint is
ejected, or when the ejected count afterwards stays within ``max_ejected`` of
``total_endpoints``. So at most ``max(1, floor(max_ejected * total))`` endpoints are out at
once: one endpoint can always be ejected, as in Envoy, even when the share rounds down to zero.
Outcomes reported for an endpoint while it is ejected (calls that were already in flight) are
ignored.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Final

from meshspec_runtime.policy.balancer.base import NO_IDS
from meshspec_runtime.policy.config import OutlierDetectionConfig

_NO_STATE: Final[dict[str, Any]] = {}
"""The per-endpoint maps of a detector that never saw a failure, shared: the first failure
gives the detector its own, and only what follows a failure writes to them (a test checks that
this one stays empty; a read-only mapping would say so itself, but the build compiled by mypyc
checks that these attributes hold dicts)."""


class OutlierDetector:
    __slots__ = (
        "_ejected_until",
        "_ejections",
        "_failures",
        "_lock",
        "_next_return",
        "_refused",
        "_times_ejected",
        "_view",
        "config",
    )

    def __init__(self, config: OutlierDetectionConfig, lock: threading.Lock | None = None) -> None:
        """``lock`` guards the state (default: a lock of its own); an ``UpstreamPolicies``
        gives all its policies one, as none of them calls another while holding it."""
        self.config = config
        self._lock = threading.Lock() if lock is None else lock
        self._failures: dict[str, int] = _NO_STATE
        """Runs of failures in progress (an endpoint without one has no entry: an empty map
        tells the call path's lock-free test that no success has a run to reset); the three
        maps are one shared read-only empty map until the first failure."""
        self._times_ejected: dict[str, int] = _NO_STATE
        self._ejected_until: dict[str, float] = _NO_STATE
        self._view = NO_IDS
        self._next_return = math.inf
        self._ejections = 0
        self._refused = 0

    def on_success(self, now: float, endpoint_id: str) -> None:
        if not self._failures.get(endpoint_id):
            return  # no run to reset (the healthy path): nothing changes, so no lock
        lock = self._lock
        lock.acquire()
        try:
            if now >= self._next_return:
                self._return_due(now)
            if endpoint_id not in self._ejected_until:
                self._failures.pop(endpoint_id, None)
        finally:
            lock.release()

    def on_failure(self, now: float, endpoint_id: str, total_endpoints: int) -> None:
        """``endpoint_id`` failed; ``total_endpoints`` is the upstream's size for the share."""
        lock = self._lock
        lock.acquire()
        try:
            if self._failures is _NO_STATE:
                self._failures, self._times_ejected, self._ejected_until = {}, {}, {}
            if now >= self._next_return:
                self._return_due(now)
            ejected = self._ejected_until
            if endpoint_id in ejected:
                return
            failures = self._failures.get(endpoint_id, 0) + 1
            if failures < self.config.consecutive_failures:
                self._failures[endpoint_id] = failures
                return
            self._failures.pop(endpoint_id, None)
            count = len(ejected)
            if count and (
                total_endpoints < 1 or (count + 1) / total_endpoints > self.config.max_ejected
            ):
                self._refused += 1
                return
            times = self._times_ejected.get(endpoint_id, 0) + 1
            self._times_ejected[endpoint_id] = times
            until = now + min(self.config.max_ejection, self.config.base_ejection * times)
            ejected[endpoint_id] = until
            self._view = frozenset(ejected)
            if until < self._next_return:
                self._next_return = until
            self._ejections += 1
        finally:
            lock.release()

    # Lock-free reads: while no ejection is due to end, the published view is the answer.
    # Writers publish a new view before they publish the next return time, so a reader that
    # sees ``now < _next_return`` sees a view at least as new as that time.

    def is_ejected(self, now: float, endpoint_id: str) -> bool:
        if now < self._next_return:
            return endpoint_id in self._view
        with self._lock:
            if now >= self._next_return:
                self._return_due(now)
            return endpoint_id in self._ejected_until

    def ejected(self, now: float) -> frozenset[str]:
        """The endpoints ejected at ``now``."""
        if now < self._next_return:
            return self._view
        with self._lock:
            if now >= self._next_return:
                self._return_due(now)
            return self._view

    def ejected_count(self, now: float) -> int:
        """How many endpoints are ejected at ``now``, without returning those whose time is
        up (for readers that must not change the detector, such as a metrics scrape)."""
        return sum(1 for until in list(self._ejected_until.values()) if until > now)

    def ejection_count(self, endpoint_id: str) -> int:
        """How many times ``endpoint_id`` has been ejected (the ejection-time multiplier)."""
        with self._lock:
            return self._times_ejected.get(endpoint_id, 0)

    def forget(self, endpoint_id: str) -> None:
        """Drop all state of an endpoint that left the upstream."""
        with self._lock:
            if self._failures is _NO_STATE:
                return  # nothing is known of any endpoint
            self._failures.pop(endpoint_id, None)
            self._times_ejected.pop(endpoint_id, None)
            if self._ejected_until.pop(endpoint_id, None) is not None:
                self._view = frozenset(self._ejected_until)
                self._next_return = min(self._ejected_until.values(), default=math.inf)

    @property
    def ejections_total(self) -> int:
        return self._ejections

    @property
    def refused_total(self) -> int:
        """Ejections refused by the share rule."""
        return self._refused

    def _return_due(self, now: float) -> None:
        ejected = self._ejected_until
        for endpoint_id in [e for e, until in ejected.items() if until <= now]:
            del ejected[endpoint_id]
            self._failures.pop(endpoint_id, None)
        self._view = frozenset(ejected)
        self._next_return = min(ejected.values(), default=math.inf)
