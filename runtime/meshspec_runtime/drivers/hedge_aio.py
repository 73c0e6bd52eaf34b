"""Driving a hedged call with asyncio: what ``call_async`` does for an edge with ``hedge:``.

Each attempt is a task of its own, bounded by its timeout (``asyncio.timeout``); the call's
task waits for the first to end or for the next hedge to be due. When the call ends, the
attempts still in flight are cancelled; one that had already produced an answer has it passed
to ``discard``. If the call's task is cancelled from outside, every attempt task is cancelled
and the call released before the cancellation propagates.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.deadline import read_deadline
from meshspec_runtime.drivers.attempt_number import ATTEMPT_NUMBER
from meshspec_runtime.drivers.classify import CallFailed, Classifier
from meshspec_runtime.policy.call import Attempt, Done, Fail, Wait
from meshspec_runtime.policy.hedge import WaitAny
from meshspec_runtime.policy.upstream import UpstreamPolicies

T = TypeVar("T")

_Ended = tuple[float, float, T | None, Exception | None]
"""An attempt task's result: (started, ended, value, error)."""

_closing: set[asyncio.Task[object]] = set()
"""Discards of late answers in progress (the loop keeps only weak references to tasks)."""


async def _attempt(
    afn: Callable[[Endpoint, float], Awaitable[T]], step: Attempt, clock: Callable[[], float]
) -> _Ended[T]:
    ATTEMPT_NUMBER.set(step.number)  # in the task's own context: its span's number
    started = clock()
    try:
        async with asyncio.timeout(step.timeout):
            value = await afn(step.endpoint, step.timeout)
    except TimeoutError:
        return started, clock(), None, TimeoutError(f"the attempt overran {step.timeout:g}s")
    except Exception as raised:
        return started, clock(), None, raised
    return started, clock(), value, None


async def call_async_hedged(
    upstream: UpstreamPolicies,
    afn: Callable[[Endpoint, float], Awaitable[T]],
    *,
    key: str | None,
    classify: Classifier,
    discard: Callable[[T], object] | None,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[object]],
) -> T:
    """``call_async`` of a hedged edge (same contract): the first good answer is returned."""
    now = clock()
    call = upstream.start_hedged(now, key, read_deadline())
    tasks: dict[int, asyncio.Task[_Ended[T]]] = {}
    result: T | None = None
    error: Exception | None = None
    try:
        while True:
            step = call.next(now)
            if type(step) is Attempt:
                tasks[step.number] = asyncio.ensure_future(_attempt(afn, step, clock))
            elif type(step) is WaitAny:
                delay = step.delay
                done, _ = await asyncio.wait(
                    tasks.values(),
                    timeout=None if delay == math.inf else delay,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                # the earliest first, one at a time: the call may end at any of them (the
                # others are then losers, whose answers _abandon discards)
                ending = sorted((t.result()[1], n) for n, t in tasks.items() if t in done)
                for _, number in ending:
                    if call.finished:
                        break
                    started, ended, value, raised = tasks.pop(number).result()
                    await _discard(discard, result)  # the call will not return the one before
                    result, error = value, raised
                    made = classify(raised if raised is not None else value, ended - started)
                    call.record(ended, number, made)
                now = clock()
            elif type(step) is Done:
                _abandon(tasks, discard)
                if error is not None:  # the answer came as an exception (raise_for_status)
                    raise error
                return result  # type: ignore[return-value]  # Done follows a returned result
            elif type(step) is Wait:
                await sleep(step.delay)
                now = clock()
            else:
                assert isinstance(step, Fail)
                _abandon(tasks, discard)
                raise CallFailed(step, result) from error
    except BaseException:
        call.cancel(clock())
        _abandon(tasks, discard)
        raise


async def _discard(discard: Callable[[T], object] | None, value: T | None) -> None:
    if value is not None and discard is not None:
        closing = discard(value)
        if inspect.isawaitable(closing):  # an async client's response.aclose()
            await closing


def _abandon(
    tasks: dict[int, asyncio.Task[_Ended[T]]], discard: Callable[[T], object] | None
) -> None:
    """Cancel the attempts still running; an answer one already had goes to ``discard``."""
    for task in tasks.values():
        task.cancel()
        task.add_done_callback(lambda ended: _discard_late(ended, discard))
    tasks.clear()


def _discard_late(task: asyncio.Task[_Ended[T]], discard: Callable[[T], object] | None) -> None:
    if task.cancelled() or discard is None:
        return
    value = task.result()[2]
    if value is None:
        return
    closing = discard(value)
    if inspect.isawaitable(closing):
        pending = asyncio.ensure_future(closing)
        _closing.add(pending)
        pending.add_done_callback(_closing.discard)
