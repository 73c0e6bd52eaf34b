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
from meshspec_runtime.deadline import read_deadline
from meshspec_runtime.drivers.answers import record_answer
from meshspec_runtime.drivers.classify import (
    CallFailed,
    Classifier,
    caused,
    classify,
)
from meshspec_runtime.drivers.hedge_sync import call_sync_hedged
from meshspec_runtime.policy.call import Attempt, Done, Fail, Wait
from meshspec_runtime.policy.upstream import UpstreamPolicies

T = TypeVar("T")


def call_sync(
    upstream: UpstreamPolicies,
    fn: Callable[[Endpoint, float], T],
    *,
    key: str | None = None,
    classify: Classifier = classify,
    discard: Callable[[T], object] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """Run one logical request through ``upstream``'s policies; return ``fn``'s last result.

    Raises :class:`CallFailed` when the policies end the call without a usable answer. Any
    exception escaping (from ``sleep``, a classifier, a KeyboardInterrupt) cancels the call,
    so no permit or half-open probe slot leaks. An edge with a hedge policy runs its attempts
    in a worker pool instead (``drivers.hedge_sync``).
    """
    if upstream.hedge is not None:
        return call_sync_hedged(
            upstream, fn, key=key, classify=classify, discard=discard, clock=clock, sleep=sleep
        )
    now = clock()
    call = upstream.start(now, key, read_deadline())
    result: T | None = None
    error: Exception | None = None
    try:
        while True:
            step = call.next(now)
            if type(step) is Attempt:
                if result is not None and discard is not None:
                    discard(result)  # a retried answer: the call will not return it
                    result = None
                try:
                    result = fn(step.endpoint, step.timeout)
                except Exception as raised:
                    result, error = None, raised
                    ended = clock()
                    call.record(ended, classify(raised, ended - now))
                    now = ended
                    continue
                error = None
                ended = clock()
                if record_answer(call, result, ended, ended - now, classify):
                    return result
                now = ended
            elif type(step) is Done:
                if error is not None:  # the answer came as an exception (raise_for_status)
                    raise error
                return result  # type: ignore[return-value]  # Done follows a returned result
            elif type(step) is Wait:
                sleep(step.delay)
                now = clock()
            else:
                assert isinstance(step, Fail)
                raise caused(CallFailed(step, result), error)
    except BaseException:
        call.cancel(clock())
        raise
