"""Recovery is measured per disturbance (fault, spike, ramp, discovery outage)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner
from simrun import MESH, run

from meshspec.commands.simulate import command as simulate
from meshspec.sim.metrics import FaultWindow, recovery_times

RAMP_SCENARIO = """\
apiVersion: meshspec/v1
kind: Scenario
name: ramp
mesh: mesh.yaml
duration: 40s
seed: 1
traffic:
  - to: front
    rate: 50/s
    timeout: 2s
    ramps: [{at: 20s, for: 5s, to: 400/s}]
behaviour:
  default: {latency: {fixed: 5ms}}
  back: {latency: {fixed: 50ms}, concurrency: 2, queue: 1000}
expect:
  - front.recovery_time <= 20s
"""


def test_a_ramp_that_collapses_the_service_is_not_recovered(
    write: Callable[[str, str], Path],
) -> None:
    # 4 instances x 2 slots / 50 ms serve 160/s; from 25 s on 400/s arrive and the queues
    # grow until the end of the run: the service never comes back.
    write("mesh.yaml", MESH)
    summary = run(write("scenario.yaml", RAMP_SCENARIO))
    front = summary["services"]["front"]
    assert summary["series"]["services"]["front"]["success_rate"][-1] < 0.5
    assert front["recovery_time"] is None
    assert front["recovery"] == {"ramp@20s": None}


def test_an_earlier_outage_counts_even_when_a_later_fault_recovers_at_once() -> None:
    # 0% success for 15 s after the first fault ends; the second fault ends and all is well.
    calls = [10] * 60
    ok = [10] * 60
    for second in range(5, 25):
        ok[second] = 0
    first = FaultWindow("crash", "back", 5.0, 10.0, "first")
    second = FaultWindow("errors", "back", 40.0, 45.0, "second")
    times = recovery_times(calls, ok, [first, second], 0.99, None)
    assert times == {"first": 15.0, "second": 0.0}


def test_a_disturbance_not_recovered_before_the_next_one_is_not_recovered() -> None:
    calls = [10] * 60
    ok = [10] * 5 + [0] * 55
    first = FaultWindow("crash", "back", 5.0, 10.0, "first")
    second = FaultWindow("errors", "back", 40.0, 45.0, "second")
    times = recovery_times(calls, ok, [first, second], 0.99, None)
    assert times == {"first": None, "second": None}


def test_back_to_back_disturbances_recover_together() -> None:
    calls = [10] * 30
    ok = [10] * 5 + [0] * 10 + [10] * 15
    first = FaultWindow("crash", "back", 5.0, 10.0, "first")
    second = FaultWindow("errors", "back", 10.0, 12.0, "second")
    times = recovery_times(calls, ok, [first, second], 0.99, None)
    assert times == {"first": 5.0, "second": 3.0}


def test_two_faults_in_a_run_are_each_judged(write: Callable[[str, str], Path]) -> None:
    # The first fault (all of back hangs for 10 s) leaves front at 0% until it ends; the
    # second is a blip. Each disturbance gets its own recovery time.
    write(
        "mesh.yaml",
        MESH.replace(
            "health_check: {http: /healthz, interval: 2s, timeout: 1s}", "health_check: off"
        ),
    )
    scenario = """\
apiVersion: meshspec/v1
kind: Scenario
name: two
mesh: mesh.yaml
duration: 60s
seed: 2
traffic:
  - {to: front, rate: 100/s, timeout: 3s}
behaviour:
  default: {latency: {fixed: 5ms}}
  back: {latency: {fixed: 20ms}, concurrency: 4, queue: 2000}
faults:
  - {name: slow, at: 5s, for: 10s, service: back, fault: latency, add: 500ms}
  - {name: blip, at: 45s, for: 1s, service: back, instances: 1, fault: errors, rate: 10%}
"""
    summary = run(write("scenario.yaml", scenario))
    recovery = summary["services"]["front"]["recovery"]
    # 4 x 4 slots / 520 ms serve ~31/s of 100/s: a backlog that takes a while to clear
    assert recovery["slow"] is not None and recovery["slow"] > 3
    assert summary["services"]["front"]["recovery_time"] == max(recovery.values())


def test_an_expectation_can_name_a_disturbance_and_reports_not_recovered(
    write: Callable[[str, str], Path],
) -> None:
    write("mesh.yaml", MESH)
    text = RAMP_SCENARIO.replace(
        "front.recovery_time <= 20s", "front.recovery_time[ramp@20s] <= 20s"
    )
    result = CliRunner().invoke(simulate, [str(write("scenario.yaml", text))])
    assert result.exit_code == 1, result.output
    assert "FAIL front.recovery_time[ramp@20s] <= 20s  measured not recovered" in result.output


def test_an_unknown_disturbance_is_a_located_error(write: Callable[[str, str], Path]) -> None:
    write("mesh.yaml", MESH)
    text = RAMP_SCENARIO.replace("front.recovery_time <= 20s", "front.recovery_time[crash] <= 1s")
    result = CliRunner().invoke(simulate, [str(write("scenario.yaml", text))])
    assert result.exit_code == 2
    assert "E0503" in result.output
    assert "no disturbance named 'crash'; the scenario has: ramp@20s" in result.output
