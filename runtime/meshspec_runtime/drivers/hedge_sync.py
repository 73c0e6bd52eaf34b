"""Driving a hedged call with threads: what ``call_sync`` does for an edge with ``hedge:``.

Hedges need attempts in flight at once, so every attempt of a hedged call runs in a worker
thread of one process-wide pool (:func:`hedge_pool`, made on first use) while the calling
thread waits for the first to end or for the next hedge to be due. A thread cannot be
interrupted: a losing attempt runs on until ``fn`` gives up by its own timeout (unless ``fn``
said how to cancel it, :func:`on_abandon`: the grpc channel cancels its future), and what it
returns then goes to ``discard`` (close the response). Each attempt runs in a copy of the
caller's context (``contextvars``), so tracing spans and the served request's deadline follow
it into the worker, with the attempt's number (``attempt_number``): the workers may start in
any order.
"""

from __future__ import annotations

import contextvars
import math
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.deadline import read_deadline
from meshspec_runtime.drivers.attempt_number import ATTEMPT_NUMBER
from meshspec_runtime.drivers.classify import CallFailed, Classifier
from meshspec_runtime.policy.call import Attempt, Done, Fail, Wait
from meshspec_runtime.policy.hedge import WaitAny
from meshspec_runtime.policy.upstream import UpstreamPolicies

T = TypeVar("T")

HEDGE_WORKERS = 64
"""Threads of the hedge pool at most (idle ones are reused; a loser holds one until its
attempt's timeout at worst)."""

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def hedge_pool() -> ThreadPoolExecutor:
    """The process-wide pool hedged attempts run in (one for every mesh and upstream: policies
    are replaced on reload, and a pool each would have to be closed with them)."""
    global _pool
    pool = _pool
    if pool is None:
        with _pool_lock:
            pool = _pool
            if pool is None:
                pool = _pool = ThreadPoolExecutor(
                    HEDGE_WORKERS, thread_name_prefix="meshspec-hedge"
                )
    return pool


class _Ended(Generic[T]):
    """What one attempt produced, handed from its worker to the calling thread."""

    __slots__ = ("ended", "error", "number", "value")

    def __init__(self, number: int, ended: float, value: T | None, error: BaseException | None):
        self.number = number
        self.ended = ended
        self.value = value
        self.error = error


_running: contextvars.ContextVar[tuple[_Attempts[Any], int] | None] = contextvars.ContextVar(
    "meshspec_hedged_attempt", default=None
)
"""In an attempt's context: its call's attempts and its number (for :func:`on_abandon`)."""


def on_abandon(cancel: Callable[[], object]) -> bool:
    """Called by ``fn`` in a hedged attempt: run ``cancel`` (from the calling thread) if the
    call ends while this attempt is still running, so a client that can cancel a request in
    flight (a grpc future) stops the loser at once instead of at its timeout. Returns False,
    and never calls ``cancel``, outside a hedged attempt (a plain call's attempts are never
    abandoned)."""
    running = _running.get()
    if running is None:
        return False
    attempts, number = running
    return attempts.on_abandon(number, cancel)


class _Attempts(Generic[T]):
    """The attempts of one call: their results queue up until the call ends; after that they
    are discarded as they come, and those still running are cancelled where ``fn`` said how
    (:func:`on_abandon`)."""

    def __init__(self, discard: Callable[[T], object] | None) -> None:
        self.ended: queue.SimpleQueue[_Ended[T]] = queue.SimpleQueue()
        self._discard = discard
        self._lock = threading.Lock()
        self._abandoned = False
        self._cancels: dict[int, Callable[[], object]] = {}
        """Of the attempts running that can be cancelled, by number."""

    def on_abandon(self, number: int, cancel: Callable[[], object]) -> bool:
        with self._lock:
            if not self._abandoned:
                self._cancels[number] = cancel
                return True
        cancel()  # the call ended before the attempt got this far
        return True

    def run(
        self,
        context: contextvars.Context,
        fn: Callable[[Endpoint, float], T],
        step: Attempt,
        clock: Callable[[], float],
    ) -> None:
        """In a worker: perform the attempt and hand its result over (or discard it)."""
        try:
            value: T | None = context.run(fn, step.endpoint, step.timeout)
            error: BaseException | None = None
        except BaseException as raised:  # handed to the calling thread, which decides
            value, error = None, raised
        ended = clock()
        with self._lock:
            self._cancels.pop(step.number, None)
            if not self._abandoned:
                self.ended.put(_Ended(step.number, ended, value, error))
                return
        self.drop(value)

    def abandon(self) -> None:
        """The call is over: cancel the attempts still running that can be, discard what
        already came, and what comes later."""
        with self._lock:
            self._abandoned = True
            cancels, self._cancels = list(self._cancels.values()), {}
        for cancel in cancels:
            cancel()
        while True:
            try:
                late = self.ended.get_nowait()
            except queue.Empty:
                return
            self.drop(late.value)

    def drop(self, value: T | None) -> None:
        if value is not None and self._discard is not None:
            self._discard(value)


def call_sync_hedged(
    upstream: UpstreamPolicies,
    fn: Callable[[Endpoint, float], T],
    *,
    key: str | None,
    classify: Classifier,
    discard: Callable[[T], object] | None,
    clock: Callable[[], float],
    sleep: Callable[[float], object],
) -> T:
    """``call_sync`` of a hedged edge (same contract): the first good answer is returned."""
    now = clock()
    call = upstream.start_hedged(now, key, read_deadline())
    attempts: _Attempts[T] = _Attempts(discard)
    started: dict[int, float] = {}
    pool = hedge_pool()
    result: T | None = None
    error: Exception | None = None
    try:
        while True:
            step = call.next(now)
            if type(step) is Attempt:
                started[step.number] = now
                context = contextvars.copy_context()
                context.run(ATTEMPT_NUMBER.set, step.number)  # the worker's span is numbered
                context.run(_running.set, (attempts, step.number))
                pool.submit(attempts.run, context, fn, step, clock)
            elif type(step) is WaitAny:
                delay = step.delay
                try:
                    ended = attempts.ended.get(timeout=None if delay == math.inf else delay)
                except queue.Empty:
                    now = clock()
                    continue
                raised = ended.error
                if raised is not None and not isinstance(raised, Exception):
                    raise raised  # KeyboardInterrupt and the like: not an attempt's outcome
                latency = ended.ended - started[ended.number]
                attempts.drop(result)  # the call will not return the answer before this one
                result, error = ended.value, raised
                made = classify(raised if raised is not None else ended.value, latency)
                call.record(ended.ended, ended.number, made)
                now = clock()
            elif type(step) is Done:
                attempts.abandon()
                if error is not None:  # the answer came as an exception (raise_for_status)
                    raise error
                return result  # type: ignore[return-value]  # Done follows a returned result
            elif type(step) is Wait:
                sleep(step.delay)
                now = clock()
            else:
                assert isinstance(step, Fail)
                attempts.abandon()
                raise CallFailed(step, result) from error
    except BaseException:
        call.cancel(clock())
        attempts.abandon()
        raise
