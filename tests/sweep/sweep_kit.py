"""What the sweep tests share (a plain module: test files import it by name)."""

from __future__ import annotations

GRID = (
    "--vary",
    "defaults.retry.attempts=2,3,4",
    "--vary",
    "defaults.retry.budget.ratio=5%,20%,100%",
)
"""3 x 3 combinations. The spec's own settings (2 attempts, 20%) are one of them and fail
(30% of back's answers are errors); 3 or 4 attempts with a 100% budget pass."""
