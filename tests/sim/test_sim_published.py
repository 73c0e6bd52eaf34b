"""Published results the simulator reproduces (scenarios/published/README.md cites each)."""

from __future__ import annotations

import math
import os
from statistics import NormalDist
from typing import Any

import pytest
from simrun import run
from support import REPO

PUBLISHED = REPO / "scenarios" / "published"


def _server(p: float) -> dict[str, Any]:
    return {
        "default": {"latency": {"fixed": "0s"}},
        "server": {"latency": {"fixed": "1ms"}, "errors": p},
    }


@pytest.mark.parametrize("p", [0.05, 0.5, 0.75])
def test_brooker_no_retries_and_three_retries(p: float) -> None:
    # Brooker (2022): N immediate retries give success 1 - p^(N+1), load sum_{k<=N} p^k.
    path = PUBLISHED / "brooker-retries.yaml"
    plain = run(path, behaviour=_server(p))["edges"]["client->server"]
    assert plain["success_rate"] == pytest.approx(1 - p, abs=0.015)
    assert plain["load_amplification"] == pytest.approx(1.0, abs=0.001)
    retried = run(path, env="retries", behaviour=_server(p))["edges"]["client->server"]
    assert retried["success_rate"] == pytest.approx(1 - p**4, abs=0.015)
    assert retried["load_amplification"] == pytest.approx(sum(p**k for k in range(4)), rel=0.03)


@pytest.mark.parametrize("p", [0.05, 0.5, 0.75])
def test_brooker_token_bucket_budget_caps_the_extra_load(p: float) -> None:
    # A 10% token bucket: load at most 1.1x; with few failures it retries them all.
    path = PUBLISHED / "brooker-retries.yaml"
    budget = run(path, env="budget", behaviour=_server(p))["edges"]["client->server"]
    assert budget["load_amplification"] <= 1.1 + 0.01
    if p <= 0.05:
        assert budget["success_rate"] == pytest.approx(1 - p**4, abs=0.015)
    else:
        assert budget["load_amplification"] == pytest.approx(1.1, abs=0.02)
        assert budget["success_rate"] == pytest.approx(1 - p + 0.1 * (1 - p), abs=0.03)


# Brooker's breaker breaks only retries (retry.stop_above 10%): above the threshold it is
# "no retries" -- success 1 - p, load 1.00x (the article: 49.8% and 1.00x at p = 0.5).
BROOKER_BREAKER = {0.2: (0.80, 1.00), 0.5: (0.498, 1.00), 0.75: (0.25, 1.00)}


@pytest.mark.parametrize("p", sorted(BROOKER_BREAKER))
def test_brooker_breaker_variant_stops_retries_above_the_failure_rate(p: float) -> None:
    path = PUBLISHED / "brooker-retries.yaml"
    edge = run(path, env="breaker", behaviour=_server(p))["edges"]["client->server"]
    success, load = BROOKER_BREAKER[p]
    assert edge["success_rate"] == pytest.approx(success, abs=0.02)
    assert edge["load_amplification"] == pytest.approx(load, abs=0.02)
    assert edge["failures"]["retries_stopped"] > 0


def test_brooker_breaker_variant_retries_below_the_failure_rate() -> None:
    path = PUBLISHED / "brooker-retries.yaml"
    edge = run(path, env="breaker", behaviour=_server(0.05))["edges"]["client->server"]
    assert edge["success_rate"] > 0.98  # most failures retried (1 - p would be 95%)


@pytest.mark.parametrize("p", [0.05, 0.75])
def test_brooker_circuit_breaker_sheds_load_when_most_calls_fail(p: float) -> None:
    # Below its 50% threshold the breaker stays closed (plain retries); far above it, it
    # opens and load falls under 1x (and success with it).
    path = PUBLISHED / "brooker-retries.yaml"
    edge = run(path, env="full-breaker", behaviour=_server(p))["edges"]["client->server"]
    if p < 0.5:
        assert edge["breaker_trips"] == 0
        assert edge["success_rate"] == pytest.approx(1 - p**4, abs=0.015)
    else:
        assert edge["breaker_trips"] > 0
        assert edge["load_amplification"] < 0.6
        assert edge["success_rate"] < 1 - p


@pytest.mark.parametrize(("env", "k"), [("throttle-k2", 2.0), ("throttle-k1-1", 1.1)])
def test_sre_adaptive_throttling_settles_near_k_requests_per_accept(env: str, k: float) -> None:
    # SRE book, "Handling Overload": requests reaching the backend / requests it accepts ~ K.
    backend = run(PUBLISHED / "sre-throttling.yaml", env=env)["services"]["backend"]
    assert backend["received"] / backend["served"] == pytest.approx(k, rel=0.08)


@pytest.mark.parametrize(("env", "low", "high"), [("retries", 2.9, 3.0), ("budget", 1.07, 1.13)])
def test_sre_retry_load_against_a_backend_rejecting_everything(
    env: str, low: float, high: float
) -> None:
    edge = run(PUBLISHED / "sre-retry-load.yaml", env=env)["edges"]["client->backend"]
    assert low <= edge["load_amplification"] <= high + 0.005


def test_retry_amplification_across_three_layers_is_64x() -> None:
    summary = run(PUBLISHED / "retry-layers.yaml")
    assert summary["services"]["database"]["relative_load"] == 64
    for edge in ("frontend->api", "api->logic", "logic->database"):
        assert summary["edges"][edge]["load_amplification"] == 4


def _tail_success(summary: dict[str, Any]) -> float:
    series = summary["series"]["services"]["caller"]
    requests, ok = sum(series["requests"][-30:]), sum(series["goodput"][-30:])
    return ok / requests


def test_metastable_retry_storm_stays_collapsed_without_backoff() -> None:
    summary = run(PUBLISHED / "metastable-retry-storm.yaml")
    assert _tail_success(summary) < 0.05
    assert summary["services"]["caller"]["recovery_time"] is None
    assert summary["edges"]["caller->server"]["load_amplification"] > 2


def test_metastable_retry_storm_recovers_with_a_retry_budget() -> None:
    summary = run(PUBLISHED / "metastable-retry-storm.yaml", env="budget")
    assert _tail_success(summary) > 0.99
    recovery = summary["services"]["caller"]["recovery_time"]
    assert recovery is not None and recovery <= 30


@pytest.mark.parametrize(
    ("env", "low", "high"),
    [(None, 0.94, 0.965), ("least-request", 0.985, 1.0), ("peak-ewma", 0.998, 1.0)],
)
def test_balancing_around_one_slow_server(env: str | None, low: float, high: float) -> None:
    # "Beyond Round Robin": about 95% (round robin), 99% (least request), 99.9% (peak EWMA).
    edge = run(PUBLISHED / "balancer-slow-server.yaml", env=env)["edges"]["client->backend"]
    assert low <= edge["success_rate"] <= high


def _supermarket_mean(path: str, env: str | None, **edits: Any) -> float:
    edge = run(PUBLISHED / path, env=env, **edits)["edges"]["dispatcher->server"]
    return float(edge["latency_mean"])


def _supermarket_model(load: float, d: int) -> float:
    """Mitzenmacher's limit (n -> infinity): sum over i >= 1 of load^((d^i - d) / (d - 1))."""
    return sum(load ** ((d**i - d) / (d - 1)) for i in range(1, 40))


LONG_TESTS = os.environ.get("MESHSPEC_LONG_TESTS") == "1"


@pytest.mark.slow
@pytest.mark.parametrize(("env", "d"), [("d2", 2), ("d3", 3)])
def test_supermarket_at_load_0_9_within_5_percent_of_the_model(env: str, d: int) -> None:
    mean = _supermarket_mean("supermarket.yaml", env)
    assert mean == pytest.approx(_supermarket_model(0.9, d), rel=0.05)


@pytest.mark.slow
def test_supermarket_one_choice_is_an_mm1_queue() -> None:
    assert _supermarket_mean("supermarket.yaml", None) == pytest.approx(1 / (1 - 0.9), rel=0.1)


@pytest.mark.slow
@pytest.mark.skipif(
    not LONG_TESTS,
    reason="3.5M requests per choice at load 0.99 (~5 CPU minutes each): set MESHSPEC_LONG_TESTS=1",
)
@pytest.mark.parametrize(("env", "d"), [("d2", 2), ("d3", 3)])
def test_supermarket_at_load_0_99_within_5_percent_of_the_model(env: str, d: int) -> None:
    # 1,000 servers, 3,000 s after a 600 s warm-up: the run's own standard error is about 1.7%
    # (a shorter run cannot tell 5% apart from noise at this load; see the README).
    mean = _supermarket_mean("supermarket-099.yaml", env)
    assert mean == pytest.approx(_supermarket_model(0.99, d), rel=0.05)


@pytest.mark.slow
def test_supermarket_at_load_0_99_more_choices_wait_less() -> None:
    # 60 s of the 1,000-server scenario after 60 s of filling: far from the steady state
    # (the test above checks that), but the order shows by a wide margin.
    short = {"duration": "120s", "warmup": "60s"}
    d1, d2, d3 = (
        _supermarket_mean("supermarket-099.yaml", env, **short) for env in (None, "d2", "d3")
    )
    assert d3 < d2 < d1


def test_metastable_ramp_is_not_recovered_and_its_expectation_fails() -> None:
    from click.testing import CliRunner

    from meshspec.commands.simulate import command as simulate

    path = str(PUBLISHED / "metastable-ramp.yaml")
    result = CliRunner().invoke(simulate, [path])
    assert result.exit_code == 1, result.output
    assert "FAIL caller.recovery_time[down] <= 60s  measured not recovered" in result.output
    budget = CliRunner().invoke(simulate, [path, "--env", "budget"])
    assert budget.exit_code == 0, budget.output


def _hedged_p99(median: float, p99: float, delay: float) -> float:
    """The p99 of min(L1, delay + L2) for two independent lognormal draws L1, L2 of this
    median and p99: where P(L1 > t) * P(L2 > t - delay) = 1%, found by bisection."""
    mu, sigma = math.log(median), math.log(p99 / median) / NormalDist().inv_cdf(0.99)
    draw = NormalDist(mu, sigma)

    def tail(t: float) -> float:
        return 1.0 - draw.cdf(math.log(t)) if t > 0 else 1.0

    low, high = delay, p99
    for _ in range(60):
        middle = (low + high) / 2
        if tail(middle) * tail(middle - delay) > 0.01:
            low = middle
        else:
            high = middle
    return low


@pytest.mark.parametrize("env", [None, "adaptive"])
def test_hedging_after_p95_adds_five_percent_load_and_cuts_the_tail(env: str | None) -> None:
    # Dean & Barroso (2013): a hedge after the p95 latency adds ~5% load and shortens the tail.
    # The default hedges after the distribution's p95 (50.9 ms); `adaptive` after the p95 each
    # caller measures from its recent attempts (`delay: p95`).
    path = PUBLISHED / "hedging-p95.yaml"
    hedged = run(path, env=env)["edges"]["client->server"]
    plain = run(path, env="plain")["edges"]["client->server"]
    assert hedged["load_amplification"] == pytest.approx(1.05, abs=0.01)
    assert plain["load_amplification"] == pytest.approx(1.0, abs=0.001)
    assert hedged["latency_p99"] < plain["latency_p99"]
    assert plain["latency_p99"] == pytest.approx(0.100, rel=0.05)  # the service time's p99
    expected = _hedged_p99(0.010, 0.100, 0.0509)
    assert hedged["latency_p99"] == pytest.approx(expected, rel=0.05)
    assert hedged["success_rate"] == plain["success_rate"] == 1.0
