"""What the hedging tests share (a plain module, imported by name): one slow instance and one
fast, and a policy that hedges after 100 ms."""

from __future__ import annotations

from typing import Any

SLOW = 1.5
"""Seconds the slow instance takes to answer."""
CALLS = 4
POLICY: dict[str, Any] = {
    "timeout": "3s",
    "retry": {"attempts": 1, "per_try_timeout": "2500ms"},
    "load_balancer": {"strategy": "round_robin"},
    "hedge": {"delay": "100ms", "max_attempts": 2},
}
FAST_ENOUGH = SLOW / 2
"""Every call ends well before the slow instance answers."""
