"""Retry budgets shared by every replica of a service (``retry.budget.scope: service``).

- ``budget``: the local view the call path reads (never waits on the network);
- ``protocol``: what an exchange carries, and the store's rule in memory (``MemoryStore``);
- ``exchange``: the sans-I/O exchange state machine (``next``/``receive``), with its breaker,
  backoff and fallback to a local share;
- ``redis``: ``RedisStore``, the store in Redis (extra ``meshspec-runtime[redis]``).
"""
