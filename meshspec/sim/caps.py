"""What one simulation may cost: the caps checked before a run starts (docs/simulate.md).

A scenario's numbers multiply: a long run at a high rate through a deep mesh is a run of hours
and gigabytes, which used to end in a ``MemoryError`` (or never) instead of an error. The
scenario models bound each number on its own (``duration``, rates, ``clients``), and
:mod:`meshspec.sim.estimate` refuses a run whose numbers together go beyond a cap.
"""

from __future__ import annotations

MAX_RUN_SECONDS = 86_400
"""A scenario's ``duration``: 24 hours of simulated time."""
MAX_RATE = 100_000
"""Requests per second of one traffic source (``rate``, ramps' ``to``, spikes' ``rate``)."""
MAX_CLIENTS = 100_000
"""Closed-loop ``clients`` of one traffic source (each is a simulated process)."""
MAX_CALLS = 20_000_000
"""Calls of a whole run, estimated: requests entering the mesh x the calls each makes on its
way through the mesh (fan-out probabilities included, retries not). About 20 minutes of CPU
and 200 MB of latency samples."""
MAX_SERIES_CELLS = 20_000_000
"""Per-second counters of a run: (6 per edge + 3 per service) x (run + drain) seconds."""
MAX_SEED = (1 << 63) - 1
"""A scenario's ``seed`` (and ``--seed``): a 64-bit signed integer."""
MAX_SEEDS = 1_000
"""``--seeds``: each seed is a whole simulation."""
MAX_JOBS = 64
"""``--jobs``: worker processes, each holding a whole simulation."""
MIN_CLIENT_CYCLE = 0.001
"""A closed-loop client's shortest cycle, for the estimate: the world pauses 1 ms after a call
that took no time."""
EDGE_SERIES, SERVICE_SERIES = 6, 3
DRAIN_CAP = 300.0
"""The drain after the traffic stops lasts at most max(run, 5 min) (seconds)."""
