"""Driving a call with threads: ``call_sync(upstream, fn)``.

``fn(endpoint, timeout)`` performs one attempt and must give up after ``timeout`` seconds
itself (pass it to the HTTP client: a thread cannot be interrupted). ``sleep`` and ``clock`` are
injectable, as in tenacity.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.drivers.classify import CallFailed, Classifier, classify
from meshspec_runtime.policy.call import Attempt, Done, Fail, Wait
from meshspec_runtime.policy.upstream import UpstreamPolicies

T = TypeVar("T")


def call_sync(
    upstream: UpstreamPolicies,
    fn: Callable[[Endpoint, float], T],
    *,
    key: str | None = None,
    classify: Classifier = classify,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """Run one logical request through ``upstream``'s policies; return ``fn``'s last result.

    Raises :class:`CallFailed` when the policies end the call without a usable answer. Any
    exception escaping (from ``sleep``, a classifier, a KeyboardInterrupt) cancels the call,
    so no permit or half-open probe slot leaks.
    """
    now = clock()
    call = upstream.start(now, key)
    result: T | None = None
    error: BaseException | None = None
    try:
        while True:
            step = call.next(now)
            kind = type(step)
            if kind is Attempt:
                assert isinstance(step, Attempt)
                try:
                    result = fn(step.endpoint, step.timeout)
                    error = None
                except Exception as raised:
                    result, error = None, raised
                ended = clock()
                call.record(ended, classify(result if error is None else error, ended - now))
                now = ended
            elif kind is Done:
                return result  # type: ignore[return-value]  # Done follows a returned result
            elif kind is Wait:
                assert isinstance(step, Wait)
                sleep(step.delay)
                now = clock()
            else:
                assert isinstance(step, Fail)
                raise CallFailed(step, result) from error
    except BaseException:
        call.cancel(clock())
        raise
