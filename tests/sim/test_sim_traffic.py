"""Traffic shapes, closed-loop clients, discovery outages and capacity faults."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from simrun import MESH, SCENARIO, run

from meshspec.sim.load import load_scenario
from meshspec.sim.metrics import ENTRY
from meshspec.sim.scenario import Traffic
from meshspec.sim.world import World

NO_RETRY = "retry: {attempts: 3, per_try_timeout: 500ms, backoff: {base: 10ms, max: 100ms}}"


def test_rate_over_time_follows_ramps_and_spikes() -> None:
    traffic = Traffic.model_validate(
        {
            "to": "front",
            "rate": "10/s",
            "ramps": [{"at": "10s", "for": "10s", "to": "110/s"}],
            "spikes": [{"at": "30s", "for": "5s", "rate": "500/s"}],
            "stop": "50s",
        }
    )
    assert traffic.rate_at(5) == 10
    assert traffic.rate_at(15) == pytest.approx(60)
    assert traffic.rate_at(25) == 110
    assert traffic.rate_at(32) == 500
    assert traffic.rate_at(40) == 110
    assert traffic.rate_at(55) == 0
    assert traffic.peak_rate() == 500


def test_simulated_arrivals_follow_the_ramp(write: Callable[[str, str], Path]) -> None:
    write("mesh.yaml", MESH)
    path = write(
        "ramp.yaml",
        SCENARIO.replace(
            "{to: front, rate: 100/s}",
            "{to: front, rate: 20/s, ramps: [{at: 5s, for: 10s, to: 220/s}]}",
        ).replace(
            "faults:\n  - {at: 5s, for: 5s, service: back, instances: 50%, fault: crash}\n", ""
        ),
    )
    offered = run(path)["series"]["edges"]["@traffic->front"]["attempts"]
    assert sum(offered[0:5]) == pytest.approx(100, rel=0.3)
    assert sum(offered[15:20]) == pytest.approx(1100, rel=0.1)
    assert sum(offered[8:12]) == pytest.approx(4 * 120, rel=0.15)


def test_closed_loop_clients_send_one_request_at_a_time(
    write: Callable[[str, str], Path],
) -> None:
    write("mesh.yaml", MESH)
    path = write(
        "closed.yaml",
        SCENARIO.replace("{to: front, rate: 100/s}", "{to: front, clients: 5, think: 90ms}")
        .replace("default: {latency: {median: 5ms, p99: 20ms}}", "default: {latency: {fixed: 5ms}}")
        .replace(
            "faults:\n  - {at: 5s, for: 5s, service: back, instances: 50%, fault: crash}\n", ""
        ),
    )
    # Each client: 5 ms at front + 5 ms at back, then 90 ms thinking: 10 requests a second.
    front = run(path)["services"]["front"]
    assert front["goodput"] == pytest.approx(5 * 10, rel=0.02)


def test_closed_loop_clients_facing_instant_failures_do_not_stall_the_clock(
    write: Callable[[str, str], Path],
) -> None:
    # Without think time, a client whose calls are refused at once (its entry service crashed)
    # used to call again at the same instant forever: the run never ended.
    write("mesh.yaml", MESH)
    path = write(
        "closed.yaml",
        SCENARIO.replace("{to: front, rate: 100/s}", "{to: front, clients: 2}").replace(
            "service: back, instances: 50%", "service: front"
        ),
    )

    def stalled(signum: int, frame: object) -> None:
        raise TimeoutError("the simulated clock stalled")

    previous = signal.signal(signal.SIGALRM, stalled)
    signal.alarm(60)
    try:
        front = run(path)["edges"]["@traffic->front"]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    failures = front["failures"]
    # refused for the 5 s of the crash, one every ms per client. Every instance failing its
    # check is "none passing", not "gone": the runtime's discovery cache keeps the last known
    # good set rather than emptying it, so no call ends with no endpoint.
    assert "no_endpoint" not in failures
    assert 2 * 5 * 1000 <= failures["attempts_exhausted"] <= 2 * 5 * 1000 * 1.01


def test_a_discovery_outage_keeps_a_crashed_instance_listed(
    write: Callable[[str, str], Path],
) -> None:
    write("mesh.yaml", MESH.replace(NO_RETRY, "retry: off"))
    base = SCENARIO.replace("for: 5s", "for: 12s")
    plain = run(write("plain.yaml", base))
    outage = run(
        write(
            "outage.yaml",
            base.replace("expect:", "  - {at: 0s, for: 14s, fault: discovery-outage}\nexpect:"),
        )
    )

    def failing(summary: dict[str, object]) -> int:
        series = summary["series"]["edges"]["front->back"]["success_rate"]  # type: ignore[index]
        return sum(1 for rate in series if rate is not None and rate < 1)

    # Health checks drop the crashed instances within a few seconds; without updates
    # (until 14 s) callers keep them from 5 s on, every second.
    assert failing(plain) <= 6
    assert failing(outage) >= 10


def test_reduced_capacity_rejects_more(write: Callable[[str, str], Path]) -> None:
    write("mesh.yaml", MESH.replace(NO_RETRY, "retry: off"))
    body = SCENARIO.replace(
        "default: {latency: {median: 5ms, p99: 20ms}}",
        "default: {latency: {fixed: 1ms}}\n"
        "  back: {latency: {fixed: 20ms}, concurrency: 4, queue: 0}",
    )
    full = run(
        write(
            "full.yaml",
            body.replace(
                "faults:\n  - {at: 5s, for: 5s, service: back, instances: 50%, fault: crash}\n", ""
            ),
        )
    )
    reduced = run(
        write("cut.yaml", body.replace("instances: 50%, fault: crash", "fault: capacity, to: 25%"))
    )
    assert full["services"]["back"]["rejected"] < reduced["services"]["back"]["rejected"]
    during = reduced["series"]["services"]["back"]["success_rate"][6:10]
    assert max(rate for rate in during if rate is not None) < 0.9


def test_a_very_long_client_timeout_does_not_stretch_the_run(
    write: Callable[[str, str], Path],
) -> None:
    # A 10000 h client timeout sized every counter array for 10000 h and kept health checks
    # and the progress clock ticking through them: the run never ended in practice.
    write("mesh.yaml", MESH)
    path = write(
        "slow.yaml",
        SCENARIO.replace("{to: front, rate: 100/s}", "{to: front, rate: 100/s, timeout: 10000h}"),
    )
    loaded, model = load_scenario(path)
    world = World(model, loaded.scenario, loaded.scenario.seed)
    assert world.drain == 300.0
    recorder = world.run()
    assert recorder.slots <= 20 + 300 + 1
    front = recorder.edge(ENTRY, "front")
    assert sum(front.calls) == pytest.approx(100 * 20, rel=0.1)
