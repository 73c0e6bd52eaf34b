"""benchmarks/targets.py finds every target's figure in what the benchmarks print today (a
benchmark whose output changed would otherwise break the one-run summary only when quoted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_target_is_read_from_its_benchmarks_output() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from targets import TARGETS
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "targets.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = done.stdout.split("\ntargets (--quick")[1]
    rows = [line for line in summary.splitlines() if line.startswith("  ")]
    assert [row.split("  ")[1].strip() for row in rows] == [t.what for t in TARGETS]
    for row in rows:
        assert re.search(r"\(target (<=|>=) [\d,.]+\)  (met|NOT MET)$", row), row
    met = sum(row.endswith("  met") for row in rows)
    assert f"{met} of {len(TARGETS)} targets met" in summary
