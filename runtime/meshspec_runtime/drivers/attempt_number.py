"""The number of the attempt running in the current context, set by the hedged drivers.

A hedged call's attempts run at once, each in a context of its own (a worker thread's copy of
the caller's, or an asyncio task's), and start in whatever order the threads get to run: only
the driver knows which attempt each is (the call machine's ``Attempt.number``). Tracing reads
it here to number the attempt's span. Plain calls' attempts run one after the other and leave
it unset.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Final

ATTEMPT_NUMBER: Final[ContextVar[int | None]] = ContextVar("meshspec_attempt_number", default=None)
