"""Driving a call with asyncio: ``await call_async(upstream, afn)``.

``afn(endpoint, timeout)`` performs one attempt; the driver also bounds it with
``asyncio.wait_for``, so an attempt that overruns is cancelled and recorded as a timeout. If the
task running the call is cancelled (or ``afn`` raises something that is not an attempt outcome,
such as ``KeyboardInterrupt``), the call is cancelled too: its bulkhead permit, breaker probe
slot and balancer active count are given back before the cancellation propagates.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.deadline import current_deadline
from meshspec_runtime.drivers.classify import CallFailed, Classifier, classify, record_answer
from meshspec_runtime.policy.call import Attempt, Done, Fail, Wait
from meshspec_runtime.policy.upstream import UpstreamPolicies

T = TypeVar("T")


async def call_async(
    upstream: UpstreamPolicies,
    afn: Callable[[Endpoint, float], Awaitable[T]],
    *,
    key: str | None = None,
    classify: Classifier = classify,
    discard: Callable[[T], object] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> T:
    """Run one logical request through ``upstream``'s policies; return ``afn``'s last result.

    Raises :class:`CallFailed` when the policies end the call without a usable answer.
    """
    now = clock()
    call = upstream.start(now, key, current_deadline())
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
                    result = await asyncio.wait_for(afn(step.endpoint, step.timeout), step.timeout)
                except Exception as raised:  # TimeoutError from wait_for included
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
                await sleep(step.delay)
                now = clock()
            else:
                assert isinstance(step, Fail)
                raise CallFailed(step, result) from error
    except BaseException:
        call.cancel(clock())
        raise
