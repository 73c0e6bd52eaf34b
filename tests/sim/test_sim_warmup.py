"""``warmup``: the latency totals leave out the requests that end before it; nothing else does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from simrun import SCENARIO, run

from meshspec.sim.metrics import Recorder, summarise

# The back end answers in 5 ms, but 200 ms slower for the first 10 s; no faults, no retries.
SLOW_START = SCENARIO.replace(
    "  default: {latency: {median: 5ms, p99: 20ms}}\n",
    "  default: {latency: {fixed: 5ms}}\n  front: {latency: {fixed: 0s}}\n",
).replace(
    "  - {at: 5s, for: 5s, service: back, instances: 50%, fault: crash}\n",
    "  - {at: 0s, for: 10s, service: back, fault: latency, add: 200ms}\n",
)


def test_a_warmup_leaves_the_slow_start_out_of_the_latency_totals(
    write: Callable[[str, str], Path], tiny: Path
) -> None:
    path = write("scenario.yaml", SLOW_START)
    whole = run(path)
    warmed = run(path, warmup="11s")
    for view in ("edges", "services"):
        key = "front->back" if view == "edges" else "back"
        before, after = whole[view][key], warmed[view][key]
        assert before["latency_mean"] > 0.05  # half the run at 205 ms
        assert after["latency_mean"] == pytest.approx(0.005, abs=1e-6)
        assert after["latency_p999"] == pytest.approx(0.005, abs=1e-6)
        # counts and series still cover the whole run
        assert after["requests"] == before["requests"]
        if view == "services":
            assert after["latency_p50"] == pytest.approx(0.005, abs=1e-6)
            assert warmed["series"][view][key]["latency_p50"][2] == pytest.approx(0.205, abs=1e-6)


def test_the_warmup_counts_whole_seconds_by_when_requests_end() -> None:
    recorder = Recorder(duration=4.0, seconds=4, slots=5, warmup=2)
    edge = recorder.edge("a", "b")
    recorder.service("b")
    for latency, ended in ((9.0, 0), (7.0, 1), (1.0, 2), (3.0, 3)):
        edge.latency.append(latency)
        edge.latency_second.append(ended)
    totals = summarise(recorder, 0.99, None)
    assert totals["edges"]["a->b"]["latency_mean"] == 2.0
    assert totals["services"]["b"]["latency_mean"] == 2.0
    unwarmed = Recorder(duration=4.0, seconds=4, slots=5)
    unwarmed.edges = recorder.edges
    unwarmed.services = recorder.services
    assert summarise(unwarmed, 0.99, None)["edges"]["a->b"]["latency_mean"] == 5.0


def test_a_warmup_with_nothing_after_it_has_no_latency(
    write: Callable[[str, str], Path], tiny: Path
) -> None:
    # traffic stops at 5 s: every request ends before the warm-up is over
    path = write("scenario.yaml", SCENARIO.replace("rate: 100/s}", "rate: 100/s, stop: 5s}"))
    edge = run(path, warmup="10s")["edges"]["front->back"]
    assert edge["requests"] > 0
    assert edge["latency_mean"] is None
