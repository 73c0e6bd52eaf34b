"""What a service believes about one upstream's instances: sans-I/O, like the policy core.

A :class:`DiscoveryCache` does no I/O and reads no clock: the backend around it (a thread for
sync programs, a task under asyncio, the simulator's process) asks :meth:`DiscoveryCache.next`
what to do at ``now`` (query the source, or sleep until a time), performs it, and hands the
answer to :meth:`DiscoveryCache.receive`, which says which endpoints to publish, if any. Time
passing is reported through :meth:`DiscoveryCache.tick`, which expires a last-known-good set
that has grown too stale.

Rules (why they exist):

- A failed read, or a read that finds instances but none passing, never replaces a non-empty
  set: calls go on with the last known good endpoints. Only an answer saying the service is
  gone (``Gone``: no instance registered, NXDOMAIN) empties it, and only once the source has
  kept saying so for ``gone_hold`` seconds, re-read every ``retry_delay``: a restarted Consul
  agent answers "nothing registered" until its anti-entropy sync has put its services back in
  the catalog (seconds, on a loaded machine), and a zone being reloaded can miss a name for a
  moment. The same hold is what Finagle's stabilizer and xDS's ignored resource deletions do.
- The last known good set is used for at most ``max_staleness`` seconds after the last good
  answer; then the fallback (the bundle's own list) is published, until the source answers.
- The source sits behind a breaker: after ``failure_threshold`` consecutive failures it is
  queried again only after an exponentially growing, jittered pause (the "probe"), so a dead
  agent is not hammered by every service at once.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from meshspec_runtime.bundle import Endpoint

# -- what the backend does ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Query:
    """Ask the source now. ``index``: the last index seen (a Consul blocking query waits up to
    ``wait`` seconds for a change past it); None for a plain read."""

    index: int | None
    wait: float


@dataclass(frozen=True, slots=True)
class Sleep:
    """Nothing to ask before ``until`` (monotonic seconds)."""

    until: float


Action = Query | Sleep

# -- what the source answered ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Found:
    """Instances listed. ``endpoints``: the passing ones (may be empty when every instance is
    failing its checks: that keeps the last known good set). ``index``: the source's change
    index (Consul), ``ttl``: how long the answer may be cached (DNS)."""

    endpoints: tuple[Endpoint, ...]
    index: int | None = None
    ttl: float | None = None


@dataclass(frozen=True, slots=True)
class Gone:
    """The source says the service has no instances at all (deregistered, NXDOMAIN)."""

    index: int | None = None
    ttl: float | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """The source could not be read (unreachable, timed out, an error status)."""

    reason: str


Answer = Found | Gone | Failed


class Signal(enum.Enum):
    """Changes worth an event; the backend turns them into ``MeshEvent``s."""

    FAILED = "failed"
    """A read failed; the last known good set stays."""
    BREAKER_OPEN = "breaker_open"
    """``failure_threshold`` reads in a row failed: the source is probed with backoff."""
    RECOVERED = "recovered"
    """A good answer after failures (or after the set expired)."""
    EXPIRED = "expired"
    """The last good answer is older than ``max_staleness``: the fallback is in force."""
    EMPTY_IGNORED = "empty_ignored"
    """The source listed instances but none passing: the last known good set stays."""
    GONE_HELD = "gone_held"
    """The source started saying the service is gone: the set stays for ``gone_hold``."""


@dataclass(frozen=True, slots=True)
class Update:
    """What :meth:`DiscoveryCache.receive` / :meth:`DiscoveryCache.tick` decided."""

    publish: tuple[Endpoint, ...] | None = None
    """The endpoint set to hand to the policies, when it changed."""
    signals: tuple[Signal, ...] = ()
    reason: str = ""
    """Why the read failed (with ``Signal.FAILED``)."""


NOTHING = Update()


@dataclass(frozen=True, slots=True)
class DiscoverySettings:
    """How a cache behaves; every duration in seconds."""

    max_staleness: float = 300.0
    """How long the last known good set is used after the last good answer (inf: forever)."""
    wait: float = 30.0
    """How long one blocking query may wait for a change."""
    min_interval: float = 0.05
    """Shortest pause between two reads, so a source answering at once is not spun on."""
    refresh: float = 30.0
    """Pause between reads when the answer carries neither an index nor a TTL."""
    retry_delay: float = 0.5
    """Pause before reading again after a failure, while the breaker is closed."""
    failure_threshold: int = 3
    """Consecutive failures that open the breaker."""
    backoff_base: float = 1.0
    """First probe delay once the breaker is open; doubles per failed probe..."""
    backoff_cap: float = 30.0
    """...up to this."""
    gone_hold: float = 10.0
    """How long the source must keep saying "gone" before the set is emptied (0: at once)."""

    def __post_init__(self) -> None:
        if not self.max_staleness > 0:
            raise ValueError(f"max_staleness must be > 0 seconds, not {self.max_staleness}")
        for name in ("wait", "refresh", "retry_delay", "backoff_base", "backoff_cap"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 seconds, not {getattr(self, name)}")
        if self.gone_hold < 0:
            raise ValueError(f"gone_hold must be >= 0 seconds, not {self.gone_hold}")
        if self.min_interval < 0:
            raise ValueError(f"min_interval must be >= 0 seconds, not {self.min_interval}")
        if self.failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, not {self.failure_threshold}")
        if self.backoff_cap < self.backoff_base:
            raise ValueError("backoff_cap must be >= backoff_base")


@dataclass(slots=True)
class DiscoveryCache:
    """One upstream service's discovered instances; see the module docstring.

    ``fallback``: the bundle's endpoint list, in force until the first good answer and again
    once the last known good set expired. ``now``: when the cache starts (the bundle counts as
    a good answer at that moment). ``rng``: jitter of the retry and probe delays.
    """

    fallback: tuple[Endpoint, ...]
    now: float
    settings: DiscoverySettings = field(default_factory=DiscoverySettings)
    rng: random.Random = field(default_factory=random.Random)
    endpoints: tuple[Endpoint, ...] = ()
    """The set in force (what was last published)."""
    index: int | None = None
    last_good: float = 0.0
    """When the source last answered well (or the cache started)."""
    failures: int = 0
    """Consecutive failed reads."""
    answers: int = 0
    """Good answers received so far."""
    expired: bool = False
    _gone_since: float | None = None
    """When the source started saying "gone" while endpoints were known (None: it does not)."""
    _due: float = 0.0
    _last_query: float = -math.inf

    def __post_init__(self) -> None:
        self.endpoints = tuple(self.fallback)
        self.last_good = self.now
        self._due = self.now

    # -- the backend's questions ----------------------------------------------------------

    def next(self, now: float) -> Action:
        """What to do at ``now``: query the source, or sleep until a time."""
        due = max(self._due, self._last_query + self.settings.min_interval)
        if now < due:
            return Sleep(due)
        self._last_query = now
        return Query(self.index, self.settings.wait)

    def staleness(self, now: float) -> float:
        """Seconds since the source last answered well (0 while it does)."""
        return 0.0 if self.failures == 0 and not self.expired else max(0.0, now - self.last_good)

    @property
    def breaker_open(self) -> bool:
        return self.failures >= self.settings.failure_threshold

    # -- answers and time -----------------------------------------------------------------

    def receive(self, now: float, answer: Answer) -> Update:
        """The source's answer to the last :class:`Query`."""
        if isinstance(answer, Failed):
            return self._failed(now, answer.reason)
        signals: list[Signal] = []
        if self.failures or self.expired:
            signals.append(Signal.RECOVERED)
        self.failures = 0
        self.expired = False
        self.last_good = now
        self.answers += 1
        self._schedule_after_answer(now, answer.index, answer.ttl)
        if isinstance(answer, Gone):
            if self.endpoints:
                if self._gone_since is None:
                    self._gone_since = now
                    signals.append(Signal.GONE_HELD)
                if now - self._gone_since < self.settings.gone_hold:
                    # re-read plainly: a blocking query from a restarted agent's index would
                    # either spin or wait out a change that ends the hold
                    self.index = None
                    self._due = now + self.settings.retry_delay
                    return Update(None, tuple(signals))
            self._gone_since = None
            return self._publish(tuple(), signals)
        self._gone_since = None
        if not answer.endpoints and self.endpoints:
            signals.append(Signal.EMPTY_IGNORED)
            return Update(None, tuple(signals))
        return self._publish(answer.endpoints, signals)

    def tick(self, now: float) -> Update:
        """Time passed: expire the last known good set once it is older than allowed."""
        if (
            not self.expired
            and self.failures
            and now - self.last_good > self.settings.max_staleness
        ):
            self.expired = True
            return self._publish(self.fallback, [Signal.EXPIRED])
        return NOTHING

    def expires_at(self) -> float:
        """When :meth:`tick` would expire the set, if reads keep failing (inf: never)."""
        if self.expired or not self.failures:
            return math.inf
        return self.last_good + self.settings.max_staleness

    # -- inside ---------------------------------------------------------------------------

    def _schedule_after_answer(self, now: float, index: int | None, ttl: float | None) -> None:
        if index is not None:
            # Consul: an index that went backwards (an agent restarted, a snapshot restored)
            # means starting over from 0; the next blocking query follows at once.
            self.index = index if index > 0 and (self.index is None or index >= self.index) else 0
            self._due = now
        elif ttl is not None:
            self.index = None
            self._due = now + max(ttl, self.settings.min_interval)
        else:
            self.index = None
            self._due = now + self.settings.refresh

    def _failed(self, now: float, reason: str) -> Update:
        self.failures += 1
        settings = self.settings
        signals = [Signal.FAILED]
        if self.failures >= settings.failure_threshold:
            if self.failures == settings.failure_threshold:
                signals.append(Signal.BREAKER_OPEN)
            probes = self.failures - settings.failure_threshold
            ceiling = min(settings.backoff_cap, settings.backoff_base * 2.0 ** min(probes, 64))
            delay = ceiling / 2 + self.rng.uniform(0, ceiling / 2)  # "equal jitter"
        else:
            delay = settings.retry_delay / 2 + self.rng.uniform(0, settings.retry_delay / 2)
        self._due = now + delay
        self.index = None  # a read after a failure starts afresh rather than blocking
        expired = self.tick(now)
        return Update(expired.publish, (*signals, *expired.signals), reason)

    def _publish(self, endpoints: Sequence[Endpoint], signals: list[Signal]) -> Update:
        ordered = tuple(sorted(endpoints, key=lambda e: e.id))
        if ordered == tuple(sorted(self.endpoints, key=lambda e: e.id)):
            return Update(None, tuple(signals))
        self.endpoints = ordered
        return Update(ordered, tuple(signals))
