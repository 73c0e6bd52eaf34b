"""Shared retry budgets in Redis: one small atomic script per exchange, run by a thread.

``Mesh.open(bundle, service=..., shared_budgets=RedisStore("redis://127.0.0.1:6379"))``
shares every retry budget of ``scope: service``. The request path never waits on Redis: each
budget decides from its local view (``shared.budget``), and one background thread drives every
budget's :class:`BudgetExchange` (``next``/``receive``), sending its counts in one ``EVALSHA``
of :data:`EXCHANGE_SCRIPT` a period. redis-py is the extra ``meshspec-runtime[redis]``,
imported when a store is made.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from meshspec_runtime.policy.config import RetryBudgetConfig
from meshspec_runtime.shared.budget import SharedBudget, shared_budget_for
from meshspec_runtime.shared.exchange import BudgetExchange, Send, SharingListener
from meshspec_runtime.shared.protocol import SUPPLY_TIME, ExchangeReply, ExchangeRequest

if TYPE_CHECKING:
    import redis

logger = logging.getLogger("meshspec_runtime")

EXCHANGE_SCRIPT = """
-- KEYS: the budget's counts (a hash: window slices r:<i>/t:<i>, or the bucket's b), its
-- members (a sorted set by expiry) and their demands (a hash, and its sum in field '='),
-- all three under one hash tag. ARGV: member, requests, retries, kind, ratio, reserve,
-- slice width (ms), fill, cap, member ttl (ms), key ttl (ms), demand, supply time (ms). The
-- supply (tokens a second, smoothed) is in the counts' fields s and st. The rule is
-- MemoryStore's (meshspec_runtime.shared.protocol), on the server's clock so that every
-- member cuts the window into the same slices; O(log members) per exchange.
local counts, members, demands = KEYS[1], KEYS[2], KEYS[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local member, requests, retries = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ratio = tonumber(ARGV[5])
local demand = tonumber(redis.call('HGET', demands, '=') or '0')
demand = demand + tonumber(ARGV[12]) - tonumber(redis.call('HGET', demands, member) or '0')
redis.call('HSET', demands, member, ARGV[12])
redis.call('ZADD', members, now + tonumber(ARGV[10]), member)
local gone = redis.call('ZRANGEBYSCORE', members, '-inf', '(' .. now)
for _, name in ipairs(gone) do
  demand = demand - tonumber(redis.call('HGET', demands, name) or '0')
  redis.call('HDEL', demands, name)
  redis.call('ZREM', members, name)
end
redis.call('HSET', demands, '=', string.format('%.17g', demand))
local tau = tonumber(ARGV[13])
local supply = tonumber(redis.call('HGET', counts, 's') or '0')
local since = now - tonumber(redis.call('HGET', counts, 'st') or tostring(now))
supply = supply * math.exp(-since / tau) + ratio * requests * 1000 / tau
redis.call('HSET', counts, 's', string.format('%.17g', supply), 'st', string.format('%.17g', now))
local balance
if ARGV[4] == 'window' then
  local head = math.floor(now / tonumber(ARGV[7]))
  redis.call('HINCRBY', counts, 'r:' .. head, requests)
  redis.call('HINCRBY', counts, 't:' .. head, retries)
  balance = tonumber(ARGV[6])
  local fields = redis.call('HGETALL', counts)
  for i = 1, #fields, 2 do
    local name = fields[i]
    local kind = string.sub(name, 1, 2)
    if kind == 'r:' or kind == 't:' then
      if tonumber(string.sub(name, 3)) <= head - 10 then
        redis.call('HDEL', counts, name)
      elseif kind == 'r:' then
        balance = balance + ratio * tonumber(fields[i + 1])
      else
        balance = balance - tonumber(fields[i + 1])
      end
    end
  end
else
  local current = tonumber(redis.call('HGET', counts, 'b') or ARGV[8])
  balance = math.min(tonumber(ARGV[9]), current + ratio * requests) - retries
  redis.call('HSET', counts, 'b', string.format('%.17g', balance))
end
local ttl = math.ceil(tonumber(ARGV[11]))
for _, key in ipairs(KEYS) do
  redis.call('PEXPIRE', key, ttl)
end
return {
  string.format('%.17g', balance),
  redis.call('ZCARD', members),
  string.format('%.17g', math.max(0, demand)),
  string.format('%.17g', supply),
}
"""


class RedisStore:
    """Shares ``scope: service`` retry budgets through the Redis server at ``url``.

    ``period``: how often each budget exchanges its counts (seconds); ``timeout``: how long one
    exchange may take before it counts as failed; after ``failures_to_fall_back`` failures in
    a row a budget falls back to its local share, and tries again after a jittered backoff of
    up to ``backoff_max``. ``prefix`` starts every key (several meshes can share a server).
    A :class:`~meshspec_runtime.Mesh` given a store closes it when it closes.
    """

    def __init__(
        self,
        url: str,
        *,
        period: float = 0.1,
        timeout: float = 0.25,
        failures_to_fall_back: int = 2,
        backoff_max: float = 2.0,
        prefix: str = "meshspec",
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                f"RedisStore({url!r}): expected a redis://, rediss:// or unix:// URL, "
                "e.g. redis://127.0.0.1:6379"
            )
        if not (timeout > 0 and 0 < period <= backoff_max):
            raise ValueError(
                f"RedisStore: period ({period}s) and timeout ({timeout}s) must be above 0, "
                f"and period at most backoff_max ({backoff_max}s)"
            )
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError as error:
            raise ImportError(
                "RedisStore needs redis-py: pip install 'meshspec-runtime[redis]'"
            ) from error
        self.url = url
        self.period = period
        self.failures_to_fall_back = failures_to_fall_back
        self.backoff_max = backoff_max
        self.prefix = prefix
        self.clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        # no retries of its own: a failed exchange goes to the exchange's breaker and backoff
        self._client: redis.Redis = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._script: Any = self._client.register_script(EXCHANGE_SCRIPT)
        self._member = f"{socket.gethostname()}:{os.getpid()}:{self._rng.getrandbits(32):08x}"
        self._exchanges: list[BudgetExchange] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def exchanges(self) -> tuple[BudgetExchange, ...]:
        """The exchanges of every budget shared so far."""
        return tuple(self._exchanges)

    @property
    def member(self) -> str:
        """This process's name among the members of every budget it shares."""
        return self._member

    def share(
        self,
        config: RetryBudgetConfig,
        *,
        mesh: str,
        caller: str,
        upstream: str,
        listener: SharingListener | None = None,
    ) -> SharedBudget:
        """A shared budget for ``caller -> upstream``, exchanged with in the background from
        now on (in place of an earlier one for the same edge); ``listener(old, new, now,
        members)`` hears every change of its state."""
        budget = shared_budget_for(config, random.Random(self._rng.getrandbits(64)))
        exchange = BudgetExchange(
            budget,
            key=f"{mesh}/{caller}/{upstream}",
            member=self._member,
            rng=self._rng,
            period=self.period,
            failures_to_fall_back=self.failures_to_fall_back,
            backoff_max=self.backoff_max,
        )
        if listener is not None:
            exchange.add_listener(listener)
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self!r} is closed")
            # a reload that changed the edge shares its new budget in place of the old one
            kept = [other for other in self._exchanges if other.key != exchange.key]
            self._exchanges = [*kept, exchange]
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="meshspec-shared-budgets", daemon=True
                )
                self._thread.start()
        self._wake.set()
        return budget

    def close(self) -> None:
        """Stop exchanging (budgets keep deciding on their last view) and disconnect.
        Idempotent."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        self._wake.set()
        if thread is not None:
            thread.join()
        self._client.close()

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r})"

    # -- the background thread --------------------------------------------------------------

    def _run(self) -> None:
        while not self._closed:
            self._wake.clear()
            wake = self.clock() + 1.0
            for exchange in self._exchanges:
                try:
                    step = exchange.next(self.clock())
                    if isinstance(step, Send):
                        exchange.receive(self.clock(), self._send(step.request))
                        wake = self.clock()  # look again at once: others may be due
                    else:
                        wake = min(wake, step.until)
                except Exception:  # never let one budget stop the others' exchanges
                    logger.exception("shared retry budget %s: exchange failed", exchange.key)
            self._wake.wait(max(0.0, wake - self.clock()))

    def _send(self, request: ExchangeRequest) -> ExchangeReply | None:
        shape = request.shape
        try:
            balance, members, demand, supply = self._script(
                keys=[f"{self.prefix}:budget:{{{request.key}}}:{part}" for part in "cmd"],
                args=[
                    request.member,
                    request.requests,
                    request.retries,
                    shape.kind,
                    repr(shape.ratio),
                    repr(shape.reserve),
                    repr(shape.width * 1000),
                    repr(shape.fill),
                    repr(shape.cap),
                    repr(request.member_ttl * 1000),
                    repr(request.key_ttl * 1000),
                    repr(request.demand),
                    repr(SUPPLY_TIME * 1000),
                ],
            )
            return ExchangeReply(float(balance), int(members), float(demand), float(supply))
        except self._errors as error:
            logger.debug("shared retry budget %s: %s", request.key, error)
            return None
