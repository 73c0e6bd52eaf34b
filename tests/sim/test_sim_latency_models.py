"""Latency models, network delay per attempt, and per-request hangs."""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError
from simrun import MESH, run

from meshspec.sim.distributions import sampler
from meshspec.sim.scenario import Latency


def _draws(form: dict[str, object], n: int = 20000) -> list[float]:
    draw = sampler(Latency.model_validate(form), random.Random(7))
    return [draw() for _ in range(n)]


def test_exponential_has_the_given_mean() -> None:
    assert statistics.fmean(_draws({"exponential": "10ms"})) == pytest.approx(0.010, rel=0.03)


def test_truncated_normal_never_goes_below_zero() -> None:
    draws = _draws({"mean": "10ms", "sd": "10ms"})
    assert min(draws) >= 0.0
    assert statistics.fmean(draws) > 0.010  # the cut-off tail moves the mean up


def test_empirical_quantiles_are_reproduced() -> None:
    draws = sorted(
        _draws({"quantiles": {"p0": "1ms", "p50": "4ms", "p90": "10ms", "p100": "20ms"}})
    )
    assert draws[0] >= 0.001 and draws[-1] <= 0.020
    assert draws[len(draws) // 2] == pytest.approx(0.004, rel=0.03)
    assert draws[int(len(draws) * 0.9)] == pytest.approx(0.010, rel=0.03)


@pytest.mark.parametrize(
    "form",
    [
        {"fixed": "1ms", "exponential": "1ms"},
        {"mean": "1ms"},
        {"quantiles": {"p10": "5ms", "p90": "1ms"}},
        {"quantiles": {"median": "5ms", "p90": "6ms"}},
    ],
)
def test_bad_latency_forms_are_refused(form: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Latency.model_validate(form)


SCENARIO = """\
apiVersion: meshspec/v1
kind: Scenario
name: net
mesh: mesh.yaml
duration: 10s
seed: 1
traffic:
  - {to: front, rate: 100/s}
behaviour:
  default: {latency: {fixed: 5ms}}
"""


def test_network_delay_is_added_each_way_per_attempt(write: Callable[[str, str], Path]) -> None:
    write("mesh.yaml", MESH)
    plain = run(write("plain.yaml", SCENARIO))["edges"]["front->back"]["latency_mean"]
    delayed = SCENARIO + "network:\n  front->back: {fixed: 20ms}\n"
    mean = run(write("net.yaml", delayed))["edges"]["front->back"]["latency_mean"]
    assert mean == pytest.approx(plain + 0.040, abs=0.001)


def test_a_share_of_requests_hang(write: Callable[[str, str], Path]) -> None:
    # retries off: 20% of attempts at back never answer and time out
    write("mesh.yaml", MESH.replace("retry: {attempts: 3,", "retry: {attempts: 1,"))
    text = SCENARIO + "  back: {latency: {fixed: 5ms}, hangs: 20%}\n"
    edge = run(write("hang.yaml", text))["edges"]["front->back"]
    assert edge["success_rate"] == pytest.approx(0.8, abs=0.04)
    assert edge["failures"]["attempts_exhausted"] > 0  # the one attempt timed out


def test_a_hang_fault_with_a_rate_hangs_that_share(write: Callable[[str, str], Path]) -> None:
    write("mesh.yaml", MESH.replace("retry: {attempts: 3,", "retry: {attempts: 1,"))
    text = SCENARIO + "faults:\n  - {at: 0s, service: back, fault: hang, rate: 50%}\n"
    edge = run(write("hang.yaml", text))["edges"]["front->back"]
    assert edge["success_rate"] == pytest.approx(0.5, abs=0.05)
