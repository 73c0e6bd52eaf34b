"""Every numeric bound that keeps a policy within what the runtime can hold, in one place.

A value beyond these would not be refused by the policy code itself: it would make it allocate
a window or a table of that size, loop that many times per pick, or compute with an infinity,
so that the failure shows up later as a hang or a ``MemoryError`` on the request path. The
runtime's models (:mod:`meshspec_runtime.policy.config`) refuse such values when a bundle is
loaded, the spec language refuses them where they are written, and the simulator's scenario
models use the same bounds for their durations and rates. ``docs/spec.md`` lists them (a test
checks the table against :data:`LIMITS`).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_COUNT = 2**31 - 1
"""The largest count any setting takes: a 32-bit signed integer, which the bundle's JSON writer
and its readers (Consul's Go ints among them) hold."""
MIN_DURATION_SECONDS = 1e-9
"""The bundle writes whole nanoseconds: a shorter duration would be written as 0s."""
MAX_DURATION_SECONDS = (2**63 - 1) // 1_000_000_000
"""The longest duration a Go ``time.Duration`` holds (its whole seconds, about 292 years):
Consul parses every duration the bundle writes as one, and refuses a longer one."""
MAX_DURATION_TEXT = "2562047h47m16s"
""":data:`MAX_DURATION_SECONDS` as the spec writes it."""
MAX_RATE_PER_SECOND = 1_000_000_000.0
"""A rate (a retry budget's floor, a scenario's arrivals): a billion a second is beyond any
single client and keeps every product with a window finite."""
MAX_BUDGET_TOKENS = 1_000_000_000.0
"""A token-bucket retry budget's ``initial``, ``cap`` and ``threshold``: a billion retries is
beyond any bucket anyone sizes, and keeps the balance an exact float count."""
MAX_MULTIPLIER = 1000.0
"""Backoff and breaker multipliers and the adaptive throttle's ``k``: growth per step."""
MAX_ATTEMPTS = 100
"""Total tries of one call: each may wait for a backoff and a timeout."""
MAX_HEDGE_ATTEMPTS = 5
"""Attempts of one hedged call in flight at once, the first included (gRPC caps its
``hedgingPolicy.maxAttempts`` at 5 too): each holds a connection and a worker."""
MAX_CONDITIONS = 128
"""Entries of ``retry.on`` and ``circuit_breaker.failure_on``: every outcome is matched against
the list, and there are fewer distinct conditions than this that anyone would list."""
MAX_COUNT_WINDOW = 100_000
"""Calls in a breaker's count window: one slot each, allocated when the breaker is made."""
MAX_TIME_WINDOW_SECONDS = 3600
"""Seconds in a breaker's time window: one bucket a second, allocated when it is made."""
MAX_RETRY_STOP_SLICES = 100
"""Slices of a retry stop's time window (``retry.stop_above.window``): one pair of counters
each; a window longer than this many seconds gets slices of more than a second."""
MAX_CHOICES = 100
"""Hosts least_request draws per pick: each pick costs that many draws."""
MAX_RING_SIZE = 1 << 18
"""Points on a ring-hash ring: built (hashed and sorted) whenever the endpoint set changes."""
MIN_MAGLEV_TABLE_SIZE = 7
MAX_MAGLEV_TABLE_SIZE = 1_000_003
"""Slots of a maglev table (a prime): filled whenever the endpoint set changes."""
MAX_HASH_ON_LENGTH = 255
"""Characters of ``load_balancer.hash_on``, a request attribute's name."""


def is_prime(n: int) -> bool:
    """Trial division: cheap for the table sizes allowed (at most about a thousand steps)."""
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    divisor = 3
    while divisor * divisor <= n:
        if n % divisor == 0:
            return False
        divisor += 2
    return True


@dataclass(frozen=True, slots=True)
class Limit:
    """One documented bound: the settings it applies to and its range."""

    settings: str
    lowest: str
    highest: str
    why: str


LIMITS: tuple[Limit, ...] = (
    Limit(
        "durations (`timeout`, `per_try_timeout`, backoff, windows of time, `open_for`, "
        "ejection times, `ewma_decay`, slow-call threshold)",
        "1ns (more than 0 in the bundle)",
        MAX_DURATION_TEXT,
        "Go's longest `time.Duration`, which Consul parses",
    ),
    Limit(
        "`retry.budget.min_per_second`",
        "0",
        f"{MAX_RATE_PER_SECOND:.0f}/s",
        "keeps the budget's reserve finite",
    ),
    Limit(
        "`retry.budget.initial`, `retry.budget.cap`, `retry.budget.threshold` (kind `bucket`)",
        "0 (`cap`: 1)",
        f"{MAX_BUDGET_TOKENS:.0f} tokens",
        "keeps the balance an exact count",
    ),
    Limit(
        "`retry.backoff.multiplier`, `circuit_breaker.open_for_multiplier`, `adaptive_throttle.k`",
        "1",
        f"{MAX_MULTIPLIER:g}",
        "growth per step; finite",
    ),
    Limit("`retry.attempts`", "1", str(MAX_ATTEMPTS), "total tries of one call"),
    Limit(
        "`hedge.max_attempts`",
        "2",
        str(MAX_HEDGE_ATTEMPTS),
        "attempts of one call in flight at once (gRPC's cap)",
    ),
    Limit(
        "`retry.on`, `circuit_breaker.failure_on`, `hedge.non_fatal` (entries)",
        "0",
        str(MAX_CONDITIONS),
        "each outcome is matched against the list",
    ),
    Limit(
        "`circuit_breaker.window` of kind `count` (`size`)",
        "1",
        str(MAX_COUNT_WINDOW),
        "one slot a call, allocated up front",
    ),
    Limit(
        "`circuit_breaker.window` of kind `time` (`size`)",
        "1s",
        f"{MAX_TIME_WINDOW_SECONDS}s",
        "one bucket a second, allocated up front",
    ),
    Limit(
        "`load_balancer.choices`",
        "2",
        str(MAX_CHOICES),
        "draws per pick",
    ),
    Limit(
        "`load_balancer.ring_size`",
        "1",
        str(MAX_RING_SIZE),
        "points hashed and sorted when the endpoint set changes",
    ),
    Limit(
        "`load_balancer.maglev_table_size` (a prime)",
        str(MIN_MAGLEV_TABLE_SIZE),
        str(MAX_MAGLEV_TABLE_SIZE),
        "slots filled when the endpoint set changes",
    ),
    Limit(
        "`load_balancer.hash_on` (characters)",
        "1",
        str(MAX_HASH_ON_LENGTH),
        "a request attribute's name",
    ),
    Limit(
        "other counts (`minimum_calls`, `consecutive_failures`, `half_open_calls`, "
        "`concurrency_limit`)",
        "1",
        str(MAX_COUNT),
        "a 32-bit signed integer",
    ),
)


def limits_table() -> str:
    """The Markdown table of :data:`LIMITS` that docs/spec.md holds."""
    lines = ["| setting | lowest | highest | why |", "|---|---|---|---|"]
    lines += [f"| {x.settings} | {x.lowest} | {x.highest} | {x.why} |" for x in LIMITS]
    return "\n".join(lines) + "\n"
