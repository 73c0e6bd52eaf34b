"""Driving a call with asyncio: ``await call_async(upstream, afn)``.

``afn(endpoint, timeout)`` performs one attempt; the driver also bounds it: an attempt that
overruns its timeout is cancelled and recorded as a timeout. The bound is one entry in the
loop's heap of deadlines (``attempt_timer``), not a task of its own as with
``asyncio.wait_for``. If the task running the call is cancelled from outside (or ``afn`` raises
something that is not an attempt outcome, such as ``KeyboardInterrupt``), the call is
cancelled too: its bulkhead permit, breaker probe slot and balancer active count are given back
before the cancellation propagates.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.deadline import read_deadline
from meshspec_runtime.drivers.answers import record_answer
from meshspec_runtime.drivers.attempt_timer import CANCELLING, FIRED, timer_for
from meshspec_runtime.drivers.classify import (
    CallFailed,
    Classifier,
    caused,
    classify,
)
from meshspec_runtime.drivers.hedge_aio import call_async_hedged
from meshspec_runtime.policy.call import Attempt, Done, Fail, Wait
from meshspec_runtime.policy.upstream import UpstreamPolicies

T = TypeVar("T")

_CancelledError = asyncio.CancelledError
_current_task = asyncio.current_task
_running_loop = asyncio.get_running_loop


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

    Raises :class:`CallFailed` when the policies end the call without a usable answer. An
    edge with a hedge policy runs each attempt as a task of its own (``drivers.hedge_aio``).
    """
    if upstream.hedge is not None:
        return await call_async_hedged(
            upstream, afn, key=key, classify=classify, discard=discard, clock=clock, sleep=sleep
        )
    loop = _running_loop()
    task = _current_task(loop)
    if task is None:
        raise RuntimeError("call_async() must run in an asyncio task (its timeouts cancel it)")
    timer = timer_for(loop)
    now = clock()
    call = upstream.start(now, key, read_deadline())
    result: T | None = None
    error: Exception | None = None
    try:
        while True:
            step = call.next(now)
            if type(step) is Attempt:
                if result is not None and discard is not None:
                    closing = discard(result)  # a retried answer: the call will not return it
                    if inspect.isawaitable(closing):  # an async client's response.aclose()
                        await closing
                    result = None
                entry = timer.watch(loop, task, step.timeout)
                try:
                    result = await afn(step.endpoint, step.timeout)
                except BaseException as raised:
                    timer.done(entry)
                    failure = _attempt_error(raised, entry[FIRED], task, entry[CANCELLING], step)
                    result, error = None, failure
                    ended = clock()
                    call.record(ended, classify(failure, ended - now))
                    now = ended
                    continue
                timer.done(entry)
                if entry[FIRED]:  # the timer fired, but ``afn`` returned all the same
                    task.uncancel()
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
                raise caused(CallFailed(step, result), error)
    except BaseException:
        call.cancel(clock())
        raise


def _attempt_error(
    raised: BaseException,
    fired: object,
    task: asyncio.Task[object],
    cancelling: object,
    step: Attempt,
) -> Exception:
    """The error an attempt failed with, given what ``afn`` raised and whether the attempt's
    timer ``fired``; raises again what is not an attempt's outcome (an outside cancellation,
    ``KeyboardInterrupt``)."""
    if fired:
        # as asyncio.timeout: the timer's cancellation is taken back; any other one requested
        # since the attempt began (``cancelling`` then) is an outside cancellation, which wins
        if task.uncancel() > cancelling:  # type: ignore[operator]  # an int
            if isinstance(raised, _CancelledError):
                raise raised
            raise caused(_CancelledError(), raised)  # ``afn`` made the cancellation an error
        if isinstance(raised, _CancelledError):
            return TimeoutError(f"the attempt overran its timeout of {step.timeout:g}s")
    if isinstance(raised, Exception):
        return raised
    raise raised
