"""Per-edge call statistics, counted off the request path.

When metrics are on, a finished ``Call`` appends itself to its upstream's ``CallLog`` (one
``deque.append``, atomic under the GIL: the call already holds its start and end times, its
attempts and its verdict); the common case, a call answered at its first attempt, appends only
its duration. The log is folded into plain counters beside the
request path: by a scrape, and every second by a :class:`PeriodicFold` thread, so memory stays
bounded between scrapes; only a burst that leaves ``FOLD_AT`` calls waiting makes the appending
thread fold. Folding classifies each call the way the metrics document
(``observe.names.OUTCOMES``) and never touches policy state.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final

from meshspec_runtime.observe.names import (
    DURATION_BUCKETS,
    HEDGE_EVENTS,
    OUTCOMES,
    REFUSAL_REASONS,
)
from meshspec_runtime.policy.call import Done, Fail, FailReason
from meshspec_runtime.policy.hedge import HedgedCall
from meshspec_runtime.policy.outcome import ConditionSet, Outcome, OutcomeKind

if TYPE_CHECKING:
    from meshspec_runtime.policy.call import Call

_REJECTIONS: Final = frozenset(
    {
        FailReason.BREAKER_OPEN,
        FailReason.THROTTLED,
        FailReason.CONCURRENCY_LIMIT,
        FailReason.NO_ENDPOINT,
    }
)
_INDEX: Final = {outcome: index for index, outcome in enumerate(OUTCOMES)}
_SUCCESS = _INDEX["success"]
_BY_KIND: Final = {
    OutcomeKind.TIMEOUT: "timeout",
    OutcomeKind.CONNECT_FAILURE: "connect_failure",
    OutcomeKind.RESET: "error",
    OutcomeKind.ERROR: "error",
}


def attempt_label(outcome: Outcome, failure_on: ConditionSet) -> str:
    """The ``outcome`` label (``names.OUTCOMES``) of one attempt: an answer is ``error`` when
    the edge's ``failure_on`` matches it, else ``success``."""
    if outcome.kind is OutcomeKind.ANSWER:
        return "error" if failure_on.matches(outcome) else "success"
    return _BY_KIND[outcome.kind]


def call_label(final: Done | Fail, failure_on: ConditionSet) -> str:
    """The ``outcome`` label of a call that ended with ``final``: refused locally, or ended
    before any attempt, is ``rejected``; the deadline is ``timeout``; otherwise its last
    attempt's label. The one rule the collector and the simulator's series both use."""
    if type(final) is Done:
        return attempt_label(final.outcome, failure_on)
    assert isinstance(final, Fail)
    if final.reason in _REJECTIONS or final.last is None:
        return "rejected"
    if final.reason is FailReason.DEADLINE_EXCEEDED:
        return "timeout"
    return attempt_label(final.last, failure_on)


class EdgeCounts:
    """What the log has folded so far; only ever grows. Read with the log's lock held, or
    through :meth:`CallLog.snapshot`."""

    __slots__ = (
        "attempts",
        "buckets",
        "duration_sum",
        "hedges",
        "refused",
        "requests",
        "retries",
    )

    def __init__(self) -> None:
        self.requests = [0] * len(OUTCOMES)
        self.attempts = [0] * len(OUTCOMES)
        self.retries = 0
        self.hedges = dict.fromkeys(HEDGE_EVENTS, 0)
        """Hedged calls' attempts: started, won, cancelled, refused (see ``names``)."""
        self.refused = dict.fromkeys(REFUSAL_REASONS, 0)
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)
        """Per bucket (not cumulative); the last one is +Inf."""
        self.duration_sum = 0.0

    def copy(self) -> EdgeCounts:
        made = EdgeCounts()
        made.requests, made.attempts = list(self.requests), list(self.attempts)
        made.retries, made.refused = self.retries, dict(self.refused)
        made.hedges = dict(self.hedges)
        made.buckets, made.duration_sum = list(self.buckets), self.duration_sum
        return made


def add_sorted(durations: list[float], buckets: list[int]) -> None:
    """Counts sorted ``durations`` into ``buckets`` as ``bisect_left(DURATION_BUCKETS, d)`` of
    each would: bucket ``k`` holds the durations above bound ``k - 1`` up to bound ``k``."""
    below = 0
    for index, bound in enumerate(DURATION_BUCKETS):
        upto = bisect.bisect_right(durations, bound, below)
        buckets[index] += upto - below
        below = upto
    buckets[len(DURATION_BUCKETS)] += len(durations) - below


class CallLog:
    """Finished calls of one upstream, waiting to be counted."""

    __slots__ = ("_counts", "_failure_on", "_lock", "_retry_on", "answers", "pending")

    def __init__(self, failure_on: ConditionSet, retry_on: ConditionSet) -> None:
        self.pending: deque[Call | HedgedCall] = deque()
        """Finished calls, appended by ``Call`` on the request path."""
        self.answers: deque[float] = deque()
        """Durations of calls answered at their first attempt by ``record_success``."""
        self._failure_on = failure_on
        self._retry_on = retry_on
        self._counts = EdgeCounts()
        self._lock = threading.Lock()

    def snapshot(self) -> EdgeCounts:
        """Fold what is pending and return a copy of the counts."""
        with self._lock:
            self._fold()
            return self._counts.copy()

    def fold_if_idle(self) -> None:
        """Fold now unless another thread is folding (called from the request path)."""
        if self._lock.acquire(blocking=False):
            try:
                self._fold()
            finally:
                self._lock.release()

    def _fold(self) -> None:
        answers, counts = self.answers, self._counts
        taken = len(answers)  # what arrives meanwhile waits for the next fold
        if taken:
            popleft = answers.popleft
            durations = [popleft() for _ in range(taken)]
            counts.duration_sum += sum(durations)  # summed in arrival order, as one by one
            durations.sort()  # then counted per bucket with two bisections each
            add_sorted(durations, counts.buckets)
            counts.requests[_SUCCESS] += taken
            counts.attempts[_SUCCESS] += taken
        pending = self.pending
        while True:
            try:
                call = pending.popleft()
            except IndexError:
                return
            self._count(call, counts)

    def _count(self, call: Call | HedgedCall, counts: EdgeCounts) -> None:
        attempts = call.attempts
        outcomes = call._outcomes  # what record() saw; the other attempts were plain answers
        recorded = 0
        if outcomes is not None:
            for outcome in outcomes:
                counts.attempts[self._label(outcome)] += 1
            recorded = len(outcomes)
        if type(call) is HedgedCall:
            # every outcome was recorded; the attempts cancelled unrecorded are not counted
            hedges = counts.hedges
            hedges["started"] += call.hedges
            hedges["won"] += call.hedge_won
            hedges["cancelled"] += call.hedges_cancelled
            hedges["refused"] += call.hedges_denied
            counts.retries += attempts - 1 - call.hedges
        else:
            counts.attempts[_SUCCESS] += attempts - recorded
            if attempts > 1:
                counts.retries += attempts - 1
        final = call._final
        if final is None:  # a success the fast path recorded, no step built
            counts.requests[_SUCCESS] += 1
        else:
            counts.requests[self._verdict(final)] += 1
            if type(final) is Fail and final.last is not None:
                reason = final.reason
                if reason is FailReason.ATTEMPTS_EXHAUSTED:
                    counts.refused["attempts"] += 1
                elif reason is FailReason.BUDGET_EXHAUSTED:
                    counts.refused["budget"] += 1
                elif reason is FailReason.RETRIES_STOPPED:
                    counts.refused["stopped"] += 1
                elif reason is FailReason.DEADLINE_EXCEEDED and self._retry_on.matches(final.last):
                    counts.refused["deadline"] += 1
        duration = call._ended - call._started
        counts.buckets[bisect.bisect_left(DURATION_BUCKETS, duration)] += 1
        counts.duration_sum += duration

    def _label(self, outcome: Outcome) -> int:
        return _INDEX[attempt_label(outcome, self._failure_on)]

    def _verdict(self, final: Done | Fail) -> int:
        return _INDEX[call_label(final, self._failure_on)]


class PeriodicFold:
    """Folds call logs every ``interval`` seconds in a daemon thread until :meth:`stop`."""

    def __init__(self, logs: Callable[[], Iterable[CallLog]], interval: float = 1.0) -> None:
        self._logs = logs
        self._interval = interval
        self._stopped = threading.Event()
        self._folder = threading.Thread(target=self._run, name="meshspec-metrics", daemon=True)

    def start(self) -> None:
        self._folder.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._folder.is_alive() and self._folder is not threading.current_thread():
            self._folder.join(timeout=5)

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            for log in self._logs():
                log.fold_if_idle()
