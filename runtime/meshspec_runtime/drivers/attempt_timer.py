"""Per-attempt timeouts for the asyncio driver: one heap of deadlines and one timer per loop.

``asyncio.wait_for`` runs the awaitable in a task of its own (a task, a timer and three loop
turns per attempt); ``asyncio.timeout`` and a ``loop.call_at`` per attempt still build a
``TimerHandle`` each. Here an attempt costs a list pushed onto a heap and popped again when it
ends: one loop timer, armed at the earliest deadline, cancels the task whose attempt overran.

Attempts that end are popped while they are at the top of the heap, so with sequential calls
the heap stays a few entries long; a finished entry behind a longer one in flight waits until
that one ends (or times out), which bounds the heap by the attempts started during the longest
attempt in flight.

Telling the per-try timeout from an outside cancellation works as in ``asyncio.timeout``: the
timer cancels the task (``Task.cancel``) and marks the entry; the driver, catching the
``CancelledError``, calls ``Task.uncancel`` and treats it as a timeout only when no other
cancellation was requested since the attempt began.
"""

from __future__ import annotations

import asyncio
import itertools
import weakref
from heapq import heappop, heappush
from typing import Final, cast

# An entry: [deadline (loop time), sequence number, task or None once over, cancellations
# requested before the attempt, True once the timer cancelled the task]. Lists compare
# element by element, and sequence numbers are unique: heap order never compares tasks.
Entry = list[object]

_DEADLINE: Final = 0
_TASK: Final = 2
CANCELLING: Final = 3
FIRED: Final = 4


class AttemptTimer:
    """The deadlines of one event loop's attempts in flight (use :func:`timer_for`)."""

    __slots__ = ("__weakref__", "_armed_at", "_handle", "_heap", "_numbers")

    def __init__(self) -> None:
        self._heap: list[Entry] = []
        self._numbers = itertools.count()
        self._handle: weakref.ref[asyncio.TimerHandle] | None = None
        """Weak: the loop keeps its timers, and a strong one would keep the loop (the weak
        dictionary's key) alive."""
        self._armed_at = float("inf")

    def watch(
        self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[object], timeout: float
    ) -> Entry:
        """Cancel ``task`` ``timeout`` seconds from now unless :meth:`done` comes first."""
        deadline = loop.time() + timeout
        entry: Entry = [deadline, next(self._numbers), task, task.cancelling(), False]
        heappush(self._heap, entry)
        if deadline < self._armed_at:
            self._arm(loop, deadline)
        return entry

    def done(self, entry: Entry) -> None:
        """The attempt is over (in any way): its entry leaves the heap, now or later."""
        entry[_TASK] = None
        heap = self._heap
        while heap and heap[0][_TASK] is None:
            heappop(heap)

    def _arm(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        armed = self._handle() if self._handle is not None else None
        if armed is not None:
            armed.cancel()
        self._armed_at = deadline
        self._handle = weakref.ref(loop.call_at(deadline, self._fire))

    def _fire(self) -> None:
        self._handle = None
        self._armed_at = float("inf")
        loop = asyncio.get_running_loop()
        now = loop.time()
        heap = self._heap
        while heap:
            entry = heap[0]
            task = entry[_TASK]
            if task is not None:  # in flight
                deadline = cast(float, entry[_DEADLINE])
                if deadline > now:
                    self._arm(loop, deadline)
                    return
                entry[_TASK] = None
                entry[FIRED] = True
                cast("asyncio.Task[object]", task).cancel()
            heappop(heap)

    def __len__(self) -> int:
        """Entries in the heap (in flight, or over and waiting behind one in flight)."""
        return len(self._heap)


_timers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AttemptTimer] = (
    weakref.WeakKeyDictionary()
)
_recent: tuple[asyncio.AbstractEventLoop | None, AttemptTimer] = (None, AttemptTimer())
"""The last loop asked about and its timer: the common case skips the weak dictionary."""


def timer_for(loop: asyncio.AbstractEventLoop) -> AttemptTimer:
    """The timer of ``loop`` (made on first use, gone with the loop)."""
    global _recent
    recent_loop, timer = _recent
    if recent_loop is loop:
        return timer
    known = _timers.get(loop)
    if known is None:
        known = _timers[loop] = AttemptTimer()
    _recent = (loop, known)
    return known
