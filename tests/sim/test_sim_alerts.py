"""Alerts rehearsed in simulation: the grammar, the series export (labelled as the runtime's
collector labels calls), the bundle's own rules evaluated by promtool, and the two shipped
scenarios (one pages, one does not)."""

from __future__ import annotations

import json
import random
import textwrap
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.observe import names
from meshspec_runtime.observe.calls import CallLog
from meshspec_runtime.policy.call import Attempt, Done, Fail, Wait
from meshspec_runtime.policy.config import (
    CircuitBreakerConfig,
    RetryBudgetConfig,
    RetryConfig,
    UpstreamPolicy,
)
from meshspec_runtime.policy.outcome import Outcome, OutcomeKind
from meshspec_runtime.policy.upstream import UpstreamPolicies
from simrun import MESH, run
from support import REPO, require_binary

from meshspec.cli import main
from meshspec.compile.emitters import prometheus
from meshspec.sim import alerts
from meshspec.sim.alerts import AlertRules, compile_rules, edge_series, first_fired
from meshspec.sim.expect import (
    AlertExpectation,
    ExpectationError,
    judge_alert,
    parse,
)
from meshspec.sim.load import load_mesh, load_scenario
from meshspec.sim.metrics import SUCCESS, outcome_label
from meshspec.spec import SpecError

TOOLS_DIRS = [Path.home() / ".cache" / "meshspec-tools" / "bin"]
ERROR_RATIO = prometheus.ERROR_RATIO_ALERT
BREAKER = prometheus.BREAKER_ALERT
BUDGET = prometheus.BUDGET_ALERT
ERROR, TIMEOUT, CONNECT, REJECTED = (o for o in names.OUTCOMES if o != SUCCESS)

# The tiny mesh with a breaker, a retry budget and a short alert_after on every edge.
ALERT_MESH = MESH.replace(
    "  circuit_breaker: off\n",
    "  circuit_breaker: {mode: consecutive, consecutive_failures: 5, open_for: 5s}\n"
    "  objective: {success_rate: 99%, alert_after: 30s}\n",
).replace("backoff: {base: 10ms, max: 100ms}}", "backoff: {base: 10ms, max: 100ms}, budget: {}}")


def _promtool() -> Path:
    return require_binary("promtool", extra_dirs=TOOLS_DIRS)


def _simulate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["simulate", *args], catch_exceptions=False)
    return result.exit_code, result.output


# --- grammar ------------------------------------------------------------------------------


def test_the_two_alert_forms_parse() -> None:
    fires = parse(f"alert({ERROR_RATIO}, checkout->payments) fires within 1m30s")
    assert fires == AlertExpectation(
        f"alert({ERROR_RATIO}, checkout->payments) fires within 1m30s",
        ERROR_RATIO,
        "checkout",
        "payments",
        90.0,
    )
    quiet = parse(f"  alert( {BREAKER} ,a->b )  does  not   fire ")
    assert isinstance(quiet, AlertExpectation)
    assert (quiet.alert, quiet.subject, quiet.within, quiet.fires) == (BREAKER, "a->b", None, False)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("alert(UpstreamErrorRatioHigh, a->b) does not fire", f"did you mean {ERROR_RATIO!r}"),
        ("alert(UpstreamSuccessBelowObjective, a->b) does not fire", f"(alerts: {ERROR_RATIO}"),
        (f"alert({ERROR_RATIO}, a->b) fires within 2", "with a unit"),
        (f"alert({ERROR_RATIO}, a->b) fires", "fires within DURATION"),
        (f"alert({ERROR_RATIO}, a) does not fire", "caller->upstream"),
        (f"alert({ERROR_RATIO}, a->b) fires soon", "does not fire"),
    ],
)
def test_bad_alert_expectations_say_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(ExpectationError, match=None) as caught:
        parse(text)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("expectation", "code", "words"),
    [
        (f"alert({ERROR_RATIO}, front->bak) fires within 1m", "E0501", "did you mean 'back'"),
        (f"alert({ERROR_RATIO}, back->front) fires within 1m", "E0502", "back calls: nothing"),
        (f"alert({BREAKER}, front->back) does not fire", "E0503", "has no circuit breaker"),
        (f"alert({BUDGET}, front->back) does not fire", "E0503", "has no retry budget"),
        ("alert(MeshspecUpstreamErorRatioHigh, front->back) does not fire", "E0503", "did you"),
    ],
)
def test_alert_expectations_are_checked_against_the_mesh_and_located(
    write: Callable[[str, str], Path], expectation: str, code: str, words: str
) -> None:
    write("mesh.yaml", MESH)  # no breaker, no budget
    path = write(
        "scenario.yaml",
        f"""\
        apiVersion: meshspec/v1
        kind: Scenario
        name: bad
        mesh: mesh.yaml
        duration: 20s
        traffic:
          - {{to: front, rate: 10/s}}
        expect:
          - front.success_rate >= 99%
          - {expectation}
        """,
    )
    with pytest.raises(SpecError) as caught:
        load_scenario(path)
    [found] = caught.value.diagnostics
    assert (found.code, found.line, found.path) == (code, 10, "expect[1]"), found
    assert words in found.message


def test_an_alert_on_a_service_that_does_not_exist_suggests_one(
    write: Callable[[str, str], Path], tiny: Path
) -> None:
    text = tiny.read_text().replace(
        "  - front.success_rate >= 99%", f"  - alert({ERROR_RATIO}, frnt->back) does not fire"
    )
    with pytest.raises(SpecError) as caught:
        load_scenario(write("bad.yaml", text))
    [found] = caught.value.diagnostics
    assert found.code == "E0501" and "did you mean 'front'" in found.message


# --- verdicts -----------------------------------------------------------------------------


def test_fires_within_needs_every_seed_to_fire_in_time() -> None:
    exp = parse(f"alert({ERROR_RATIO}, a->b) fires within 1m")
    assert isinstance(exp, AlertExpectation)
    on_time = judge_alert(exp, (30.0, 60.0))
    assert (on_time.passed, on_time.measured, on_time.shown) == (
        True,
        60.0,
        "fired at 60s (the latest of 2 seeds)",
    )
    late = judge_alert(exp, (30.0, 61.0))
    assert (late.passed, late.measured) == (False, 61.0)
    missing = judge_alert(exp, (30.0, None))
    assert (missing.passed, missing.measured, missing.shown) == (
        False,
        None,
        "did not fire in 1 of 2 seeds",
    )
    assert judge_alert(exp, (0.0,)).passed  # firing at the very start counts


def test_does_not_fire_fails_when_any_seed_fires() -> None:
    exp = parse(f"alert({ERROR_RATIO}, a->b) does not fire")
    assert isinstance(exp, AlertExpectation)
    quiet = judge_alert(exp, (None, None))
    assert (quiet.passed, quiet.measured, quiet.shown) == (True, None, "did not fire")
    noisy = judge_alert(exp, (None, 95.0, 40.0))
    assert (noisy.passed, noisy.measured) == (False, 40.0)
    assert noisy.shown == "fired at 40s (the earliest; in 2 of 3 seeds)"
    assert noisy.as_dict()["fired_at"] == [None, 95.0, 40.0]


# --- the export -------------------------------------------------------------------------------


def _drive(policies: UpstreamPolicies, rng: random.Random, now: float) -> tuple[str, float]:
    """One call through the call machine with random outcomes: (its label by outcome_label,
    the time it ended)."""
    outcomes = [
        Outcome(OutcomeKind.ANSWER, 0.01, 500),
        Outcome(OutcomeKind.ANSWER, 0.01, 503),
        Outcome(OutcomeKind.ANSWER, 0.01, 404),
        Outcome(OutcomeKind.TIMEOUT, 0.2),
        Outcome(OutcomeKind.CONNECT_FAILURE),
        Outcome(OutcomeKind.RESET, 0.01),
        Outcome(OutcomeKind.ERROR, 0.01),
    ]
    call = policies.start(now)
    while True:
        step = call.next(now)
        if isinstance(step, Attempt):
            if rng.random() < 0.4:
                now += 0.01
                if call.record_success(now, 0.01):
                    return SUCCESS, now
            else:
                outcome = rng.choice(outcomes)
                now += outcome.latency
                call.record(now, outcome)
        elif isinstance(step, Wait):
            now += step.delay
        else:
            assert isinstance(step, Done | Fail)
            return outcome_label(step, policies.failure_on), now


def test_calls_are_labelled_as_the_runtimes_collector_labels_them() -> None:
    policy = UpstreamPolicy(
        timeout=0.3,
        retry=RetryConfig(attempts=3, per_try_timeout=0.2, budget=RetryBudgetConfig()),
        circuit_breaker=CircuitBreakerConfig(mode="consecutive", consecutive_failures=5),
    )
    endpoints = [Endpoint(id=f"e{i}", address=f"10.0.0.{i}", port=80) for i in range(1, 4)]
    policies = UpstreamPolicies(policy, endpoints, rng=random.Random(1))
    policies.call_log = CallLog(policies.failure_on, policies.retry_on)
    rng, now, ours = random.Random(2), 0.0, Counter[str]()
    for _ in range(3000):
        label, now = _drive(policies, rng, now)
        ours[label] += 1
        now += rng.expovariate(20)
    theirs = dict(zip(names.OUTCOMES, policies.call_log.snapshot().requests, strict=True))
    assert ours == Counter({k: v for k, v in theirs.items() if v}), (ours, theirs)
    assert len(ours) == len(names.OUTCOMES)  # every label came up


def _run(seconds: int, **series: Any) -> dict[str, Any]:
    """A run's summary as the simulator writes it, for the edge front->back."""
    edge = {
        "requests": [100] * seconds,
        "failed": {},
        "budget_refused": None,
        "breaker_open": [0.0] * seconds,
        "breaker_half_open": [0.0] * seconds,
        **series,
    }
    return {"series": {"edges": {"front->back": edge}}}


def _policy(write: Callable[[str, str], Path]) -> tuple[Path, UpstreamPolicy]:
    spec = write("mesh.yaml", ALERT_MESH)
    return spec, load_mesh(spec).services["front"].upstreams["back"]


def test_the_export_is_what_a_scrape_of_the_callers_would_see(
    write: Callable[[str, str], Path],
) -> None:
    _, policy = _policy(write)
    run = _run(
        4,
        failed={TIMEOUT: [0, 5, 0, 1], REJECTED: [2, 0, 0, 0]},
        budget_refused=[0, 1, 1, 0],
        breaker_open=[0.0, 0.5, 1.0, 0.0],
        breaker_half_open=[0.0, 0.0, 0.0, 0.5],
    )
    got = {s.selector: s.values for s in edge_series(run, "front", "back", policy, 1)}
    edge = 'caller="front",upstream="back"'
    requests, state = names.REQUESTS.name, names.BREAKER_STATE.name
    # counters: the sample at t counts what ended before t
    assert got[f'{requests}{{{edge},outcome="success"}}'] == (0, 98, 193, 293, 392)
    assert got[f'{requests}{{{edge},outcome="timeout"}}'] == (0, 0, 5, 5, 6)
    assert got[f'{requests}{{{edge},outcome="rejected"}}'] == (0, 2, 2, 2, 2)
    assert got[f'{requests}{{{edge},outcome="error"}}'] == (0, 0, 0, 0, 0)
    assert got[f"{names.BUDGET_EXHAUSTED.name}{{{edge}}}"] == (0, 0, 1, 2, 2)
    # gauges: 1 when any caller instance's breaker is in the state (max over instances)
    assert got[f'{state}{{{edge},state="open"}}'] == (0, 1, 1, 0, 0)
    assert got[f'{state}{{{edge},state="half_open"}}'] == (0, 0, 0, 1, 1)
    assert got[f'{state}{{{edge},state="closed"}}'] == (1, 1, 0, 1, 1)
    assert len(got) == len(names.OUTCOMES) + 1 + 3
    # every other step: the samples at 0, 2, 4 s
    coarse = {s.selector: s.values for s in edge_series(run, "front", "back", policy, 2)}
    assert coarse[f'{requests}{{{edge},outcome="timeout"}}'] == (0, 5, 6)


def test_edges_without_a_breaker_or_budget_export_neither(tiny: Path) -> None:
    policy = load_mesh(tiny.parent / "mesh.yaml").services["front"].upstreams["back"]
    exported = {s.metric for s in edge_series(_run(3), "front", "back", policy, 1)}
    assert exported == {names.REQUESTS.name}


def test_long_runs_are_evaluated_at_a_coarser_step() -> None:
    assert alerts.evaluation_step(600) == 1
    assert alerts.evaluation_step(alerts.MAX_EVALUATIONS) == 1
    assert alerts.evaluation_step(alerts.MAX_EVALUATIONS + 1) == 2
    assert alerts.evaluation_step(86_400) == 24


# --- promtool -------------------------------------------------------------------------------


def _fired(
    write: Callable[[str, str], Path], texts: list[str], duration: int, *runs: dict[str, Any]
) -> list[tuple[float | None, ...]]:
    spec, _ = _policy(write)
    rules = AlertRules(compile_rules(spec, None, ()), load_mesh(spec), _promtool())
    exps = [parse(text) for text in texts]
    assert all(isinstance(exp, AlertExpectation) for exp in exps)
    return first_fired(exps, runs, duration, rules)  # type: ignore[arg-type]


def test_an_error_ratio_above_the_objective_fires_once_for_has_elapsed(
    write: Callable[[str, str], Path],
) -> None:
    # Half the calls fail from second 20: the counter first rises in the sample at 21 s, the
    # ratio is above 1 - 99% from then on, and alert_after (30s) later the alert fires.
    failing = _run(120, failed={ERROR: [0] * 20 + [50] * 100})
    # Every other second one call in 100 fails: 0.5%, below the 1% the objective allows.
    below = _run(120, failed={ERROR: [i % 2 for i in range(120)]})
    exp = f"alert({ERROR_RATIO}, front->back) fires within 1m"
    assert _fired(write, [exp], 120, failing, below) == [(51.0, None)]


def test_the_breaker_alert_needs_the_breaker_open_for_a_minute(
    write: Callable[[str, str], Path],
) -> None:
    long_open = _run(120, breaker_open=[0.0] * 10 + [0.5] * 70 + [0.0] * 40)
    short_open = _run(120, breaker_open=[0.0] * 10 + [0.5] * 50 + [0.0] * 60)
    exp = f"alert({BREAKER}, front->back) does not fire"
    assert _fired(write, [exp], 120, long_open, short_open) == [(70.0, None)]


def test_the_budget_alert_fires_after_five_minutes_of_refusals(
    write: Callable[[str, str], Path],
) -> None:
    refusing = _run(320, budget_refused=[0] * 5 + [1] * 5 + [0] * 310)
    quiet = _run(320)
    texts = [
        f"alert({BUDGET}, front->back) fires within 6m",
        f"alert({ERROR_RATIO}, front->back) does not fire",
    ]
    assert _fired(write, texts, 320, refusing, quiet) == [(306.0, None), (None, None)]


def test_a_promtool_failure_is_an_error_not_a_verdict(write: Callable[[str, str], Path]) -> None:
    spec, _ = _policy(write)
    broken = AlertRules(
        b"groups: [{name: x, rules: [{alert: A, expr: 'sum('}]}]\n", load_mesh(spec), _promtool()
    )
    exp = parse(f"alert({ERROR_RATIO}, front->back) does not fire")
    assert isinstance(exp, AlertExpectation)
    with pytest.raises(alerts.AlertEvaluationError, match="promtool test rules reported"):
        first_fired([exp], [_run(10)], 10, broken)


def test_without_promtool_the_command_says_so_before_running(
    write: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write("mesh.yaml", ALERT_MESH)
    path = write(
        "scenario.yaml",
        f"""\
        apiVersion: meshspec/v1
        kind: Scenario
        name: needs-promtool
        mesh: mesh.yaml
        duration: 10s
        traffic:
          - {{to: front, rate: 10/s}}
        expect:
          - alert({ERROR_RATIO}, front->back) does not fire
        """,
    )
    monkeypatch.delenv(alerts.PROMTOOL_ENV, raising=False)
    monkeypatch.setenv("PATH", str(path.parent))  # no promtool there
    code, out = _simulate(str(path))
    assert code == 2
    assert "promtool" in out and "not on PATH" in out and alerts.PROMTOOL_ENV in out
    assert "needs-promtool on mesh" not in out  # refused before simulating
    monkeypatch.setenv(alerts.PROMTOOL_ENV, str(path.parent / "promtool"))
    code, out = _simulate(str(path))
    assert code == 2 and "is not an executable file" in out


# --- the shipped scenarios ---------------------------------------------------------------------

PAGE = REPO / "scenarios" / "payments-errors-page.yaml"
QUIET = REPO / "scenarios" / "payments-crash-no-page.yaml"


def _report(*args: str, monkeypatch: pytest.MonkeyPatch, tmp: Path) -> tuple[int, str, Any]:
    monkeypatch.setenv(alerts.PROMTOOL_ENV, str(_promtool()))
    code, out = _simulate(*args, "--report", str(tmp / "report"))
    return code, out, json.loads((tmp / "report" / "report.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_the_paging_scenario_fires_the_error_ratio_alert(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, out, report = _report(str(PAGE), monkeypatch=monkeypatch, tmp=tmp_path)
    assert code == 0, out
    first = report["expectations"][0]
    assert first["expectation"].startswith(f"alert({ERROR_RATIO}, checkout->payments) fires")
    # the fault starts at 60 s and alert_after is 5m: firing within seconds of 6m
    [fired] = first["fired_at"]
    assert 360 <= fired <= 370 and first["passed"]
    verdict = f"alert({ERROR_RATIO}, checkout->payments) fires within 6m30s"
    assert f"PASS {verdict}  measured fired at {fired:g}s" in out
    assert f"PASS alert({BREAKER}, checkout->payments) does not fire  measured did not fire" in out


@pytest.mark.slow
def test_the_quiet_scenario_fires_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, out, report = _report(str(QUIET), monkeypatch=monkeypatch, tmp=tmp_path)
    assert code == 0, out
    alerts_expected = [e for e in report["expectations"] if "fired_at" in e]
    assert len(alerts_expected) == 4
    assert all(e["fired_at"] == [None] and e["shown"] == "did not fire" for e in alerts_expected)
    # there was something to absorb: checkout's callers saw payments crash
    assert report["run"]["faults"][0]["target"] == "payments"
    assert report["run"]["edges"]["checkout->payments"]["ejections"] >= 1


@pytest.mark.slow
def test_the_verdicts_fail_when_the_run_contradicts_them(
    write: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The paging run with the expectations turned around: both alert verdicts can fail.
    data = yaml.safe_load(PAGE.read_text(encoding="utf-8"))
    data["mesh"] = str(REPO / "examples" / "shop.yaml")
    data["expect"] = [
        f"alert({ERROR_RATIO}, checkout->payments) does not fire",
        f"alert({ERROR_RATIO}, checkout->payments) fires within 5m",
        f"alert({ERROR_RATIO}, web->gateway) fires within 7m",
    ]
    path = write("turned.yaml", textwrap.dedent(yaml.safe_dump(data)))
    monkeypatch.setenv(alerts.PROMTOOL_ENV, str(_promtool()))
    code, out = _simulate(str(path))
    assert code == 1, out
    assert f"FAIL alert({ERROR_RATIO}, checkout->payments) does not fire  measured fired at" in out
    assert (
        f"FAIL alert({ERROR_RATIO}, checkout->payments) fires within 5m  measured fired at" in out
    )
    assert f"FAIL alert({ERROR_RATIO}, web->gateway) fires within 7m  measured did not fire" in out


def test_the_world_labels_every_failed_call(tiny: Path) -> None:
    series = run(tiny)["series"]["edges"]["front->back"]
    failed = series["failed"]
    assert failed, "the crash fails some calls"
    assert set(failed) <= set(names.OUTCOMES) - {SUCCESS}
    # the tiny mesh's failures are all failures by the runtime's labels too (no 4xx answers)
    ok = [
        r * s if s is not None else 0
        for r, s in zip(series["requests"], series["success_rate"], strict=True)
    ]
    for second, requests in enumerate(series["requests"]):
        labelled = sum(values[second] for values in failed.values())
        assert labelled == round(requests - ok[second]), second
