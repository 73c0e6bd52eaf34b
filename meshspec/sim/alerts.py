"""Alerts rehearsed in simulation: a run's per-edge series under the runtime's metric names, and
the bundle's own alert rules evaluated over them by ``promtool test rules``.

The export mirrors what Prometheus would scrape from the mesh's callers (names from
``meshspec_runtime.observe.names``): ``meshspec_upstream_requests_total`` by ``outcome``
(cumulative, labelled as the runtime's collector labels a call), the circuit breaker's state
gauge on edges with a breaker and the budget's refusals on edges with a retry budget. The
simulator keeps a share of breakers per state rather than one gauge per caller instance, so an
edge exports one gauge per state whose value is the maximum over its instances (1 when any
instance's breaker is in that state), which is what the rules aggregate (``max by``).

promtool is the evaluator: for each (seed, edge) it gets a test group whose input series are
that edge's series, and one ``alert_rule_test`` per evaluation time expecting no alert; the
checks that fail are exactly the times the alert was firing. Every rule aggregates
``by (caller, upstream)``, so an edge's alerts depend on its own series alone, and one edge per
group keeps each query far below promtool's 10,000-sample cap whatever the size of the mesh.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from meshspec_runtime.observe import names
from meshspec_runtime.policy.breaker import BreakerState
from meshspec_runtime.policy.config import UpstreamPolicy

from meshspec.sim.expect import AlertExpectation
from meshspec.sim.mesh import MeshModel
from meshspec.sim.metrics import SUCCESS

PROMTOOL_ENV: Final = "MESHSPEC_PROMTOOL"
"""Names the promtool binary to use; otherwise the one on PATH."""
MAX_EVALUATIONS: Final = 3600
"""Rule evaluations per run: every second, or every duration/3600 s (rounded up) for runs
longer than an hour, so a long run stays a test promtool finishes in seconds."""
PROMTOOL_TIMEOUT: Final = 600.0
"""Seconds one promtool run may take."""
CALLER, UPSTREAM = names.EDGE
RULE_FILE: Final = "rules.yml"


class AlertsUnavailable(Exception):
    """Alert expectations cannot be evaluated here (promtool is missing)."""


class AlertEvaluationError(Exception):
    """promtool did not evaluate the rules (it failed, or said something unexpected)."""


@dataclass(frozen=True, slots=True)
class AlertRules:
    """What evaluates a scenario's alert expectations: the bundle's rules and promtool."""

    rules: bytes
    """The compiled ``prometheus/rules.yml``."""
    mesh: MeshModel
    """The mesh the rules were compiled from (which edges have a breaker, a budget)."""
    promtool: Path


def find_promtool() -> Path:
    """``$MESHSPEC_PROMTOOL``, else ``promtool`` on PATH; AlertsUnavailable when neither."""
    named = os.environ.get(PROMTOOL_ENV)
    if named:
        path = Path(named)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise AlertsUnavailable(f"{PROMTOOL_ENV}={named} is not an executable file")
    found = shutil.which("promtool")
    if found is None:
        raise AlertsUnavailable(
            "alert expectations are evaluated by promtool (Prometheus's rule tester), which "
            f"is not on PATH: install it (tools/install-system-deps.sh) or set {PROMTOOL_ENV}"
        )
    return Path(found)


def compile_rules(spec: Path, env: str | None, overrides: Sequence[str]) -> bytes:
    """The alert rules of the bundle ``spec`` compiles to (in memory; SpecError if invalid)."""
    from meshspec.compile.api import compile_spec_in_memory
    from meshspec.compile.emitters.prometheus import PATH

    return compile_spec_in_memory(spec, env=env, overrides=overrides).files[PATH]


def evaluation_step(duration: float) -> int:
    """Seconds between samples and between rule evaluations for a run of ``duration``."""
    return max(1, math.ceil(duration / MAX_EVALUATIONS))


# --- the export ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Series:
    metric: str
    labels: tuple[tuple[str, str], ...]
    values: tuple[float, ...]
    """One sample per step, from time 0."""

    @property
    def selector(self) -> str:
        from meshspec.compile.templating import promql_string

        inner = ",".join(f"{name}={promql_string(value)}" for name, value in self.labels)
        return f"{self.metric}{{{inner}}}"


def _cumulative(per_second: Sequence[int], step: int, seconds: int) -> tuple[float, ...]:
    """A counter scraped every ``step`` s: the sample at t counts what ended before t."""
    out, total, second = [], 0, 0
    for t in range(0, seconds + 1, step):
        while second < t:
            total += per_second[second]
            second += 1
        out.append(float(total))
    return tuple(out)


def _gauge(per_second: Sequence[float], step: int, seconds: int) -> tuple[float, ...]:
    """A gauge scraped every ``step`` s (it keeps its last value to the end of the run)."""
    return tuple(
        float(per_second[min(t, seconds - 1)]) if seconds else 0.0
        for t in range(0, seconds + 1, step)
    )


def edge_series(
    run: dict[str, Any], caller: str, upstream: str, policy: UpstreamPolicy, step: int
) -> list[Series]:
    """The edge's series, as the mesh's callers would export them, from a run's summary."""
    data = run["series"]["edges"][f"{caller}->{upstream}"]
    seconds = len(data["requests"])
    edge = ((CALLER, caller), (UPSTREAM, upstream))
    failed: dict[str, list[int]] = data["failed"]
    succeeded = [
        calls - sum(series[s] for series in failed.values())
        for s, calls in enumerate(data["requests"])
    ]
    out = []
    for outcome in names.OUTCOMES:  # the collector exports every outcome, zeros included
        per_second = succeeded if outcome == SUCCESS else failed.get(outcome, [0] * seconds)
        out.append(
            Series(
                names.REQUESTS.name,
                (*edge, ("outcome", outcome)),
                _cumulative(per_second, step, seconds),
            )
        )
    if policy.retry.budget is not None:
        refused = data["budget_refused"] or [0] * seconds
        out.append(Series(names.BUDGET_EXHAUSTED.name, edge, _cumulative(refused, step, seconds)))
    if policy.circuit_breaker is not None:
        opened, half = data["breaker_open"], data["breaker_half_open"]
        states = {
            BreakerState.OPEN: [1.0 if share > 0 else 0.0 for share in opened],
            BreakerState.HALF_OPEN: [1.0 if share > 0 else 0.0 for share in half],
            BreakerState.CLOSED: [
                1.0 if o + h < 1 - 1e-9 else 0.0 for o, h in zip(opened, half, strict=True)
            ],
        }
        for state in BreakerState:
            out.append(
                Series(
                    names.BREAKER_STATE.name,
                    (*edge, ("state", state.value)),
                    _gauge(states[state], step, seconds),
                )
            )
    return out


def input_values(values: Sequence[float]) -> str:
    """promtool's ``values`` notation: the samples, space-separated."""
    return " ".join(f"{v:.12g}" for v in values)


# --- promtool ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Group:
    """One promtool test group: one edge of one seed's run, the alerts asked about on it."""

    name: str
    caller: str
    upstream: str
    series: tuple[Series, ...]
    alerts: tuple[str, ...]


def test_document(groups: Sequence[Group], step: int, evaluations: int) -> dict[str, Any]:
    """The ``promtool test rules`` file: per group and alert, one check per evaluation time,
    each expecting no alert (a failed check is a time the alert was firing)."""
    from meshspec.compile.emitters.prometheus import prometheus_duration

    interval = prometheus_duration(step)
    times = [prometheus_duration(k * step) for k in range(evaluations)]
    return {
        "rule_files": [RULE_FILE],
        "evaluation_interval": interval,
        "tests": [
            {
                "name": group.name,
                "interval": interval,
                "input_series": [
                    {"series": s.selector, "values": input_values(s.values)} for s in group.series
                ],
                "alert_rule_test": [
                    {"eval_time": at, "alertname": alert, "exp_alerts": []}
                    for alert in group.alerts
                    for at in times
                ],
            }
            for group in groups
        ],
    }


# What ``promtool test rules`` prints, line by line (stripped), when alert checks fail; any
# other line (a rule that does not load, a bad input series) makes the output unusable.
_GROUP = re.compile(r"name: (?P<group>.*),")
_CHECK = re.compile(r"alertname: (?P<alert>[A-Za-z_:][A-Za-z0-9_:]*), time: (?P<time>[0-9a-z.]+),")
_LABELS = re.compile(r"Labels:\{(?P<labels>.*)\}")
_DETAIL = re.compile(
    r"exp:\[\],?|got:\[|[0-9]+:|Annotations:\{.*\}|\]|Unit Testing: .*|SUCCESS|FAILED:|"
)
_LABEL = re.compile(r'(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>[^"]*)"')
_DURATION_PART = re.compile(r"(?P<number>[0-9]+)(?P<unit>ms|y|w|d|h|m|s)")
_UNIT_SECONDS = {
    "y": 365 * 86400.0,
    "w": 7 * 86400.0,
    "d": 86400.0,
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 0.001,
}


def parse_duration(text: str) -> float:
    """Seconds of a Prometheus duration as promtool prints one (``1h2m3s``, ``500ms``, ``0s``)."""
    parts = list(_DURATION_PART.finditer(text))
    if not parts or "".join(p[0] for p in parts) != text:
        raise AlertEvaluationError(f"promtool printed a time that is not a duration: {text!r}")
    return sum(int(p["number"]) * _UNIT_SECONDS[p["unit"]] for p in parts)


def firing_times(output: str, groups: Sequence[Group]) -> dict[tuple[str, str], list[float]]:
    """(group name, alert) -> the evaluation times of the failed checks promtool printed, each
    checked to be an alert of that group's edge. AlertEvaluationError for anything else."""
    by_name = {group.name: group for group in groups}
    out: dict[tuple[str, str], list[float]] = {}
    group: Group | None = None
    checked: tuple[str, str] | None = None
    for line in output.splitlines():
        line = line.strip()
        if (match := _GROUP.fullmatch(line)) is not None:
            group, checked = by_name.get(match["group"]), None
            if group is None:
                raise AlertEvaluationError(_unexpected("a test group it was not given", output))
        elif (match := _CHECK.fullmatch(line)) is not None:
            if group is None or match["alert"] not in group.alerts:
                raise AlertEvaluationError(_unexpected("a check it was not given", output))
            checked = (group.name, match["alert"])
            out.setdefault(checked, []).append(parse_duration(match["time"]))
        elif (match := _LABELS.fullmatch(line)) is not None:
            found = dict(_LABEL.findall(match["labels"]))
            edge = (found.get(CALLER), found.get(UPSTREAM))
            if group is None or checked is None or edge != (group.caller, group.upstream):
                raise AlertEvaluationError(_unexpected("an alert of another edge", output))
        elif _DETAIL.fullmatch(line) is None:
            raise AlertEvaluationError(_unexpected("an error", output))
    return out


def _unexpected(what: str, output: str) -> str:
    return f"promtool test rules reported {what}:\n{output[:2000]}"


def run_promtool(promtool: Path, rules: bytes, document: dict[str, Any]) -> tuple[bool, str]:
    """Run ``promtool test rules`` on ``document`` beside ``rules``: whether every check passed,
    and its output (stdout and stderr). AlertEvaluationError when it could not run."""
    with tempfile.TemporaryDirectory(prefix="meshspec-alerts-") as folder:
        (Path(folder) / RULE_FILE).write_bytes(rules)
        test = Path(folder) / "alerts.test.yml"
        test.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        try:
            result = subprocess.run(
                [str(promtool), "test", "rules", test.name],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=PROMTOOL_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise AlertEvaluationError(
                f"promtool test rules took more than {PROMTOOL_TIMEOUT:g}s"
            ) from error
        except OSError as error:
            raise AlertEvaluationError(f"cannot run {promtool}: {error.strerror}") from error
    output = result.stdout + result.stderr
    if result.returncode not in (0, 1):
        raise AlertEvaluationError(_unexpected(f"exit status {result.returncode}", output))
    return result.returncode == 0, output


def first_fired(
    expectations: Sequence[AlertExpectation],
    runs: Sequence[dict[str, Any]],
    duration: float,
    alerts: AlertRules,
) -> list[tuple[float | None, ...]]:
    """Per expectation, when its alert first fired in each run (None: it never did), by one
    promtool run over every run's series."""
    step = evaluation_step(duration)
    evaluations = math.floor(duration / step) + 1
    edges: dict[tuple[str, str], list[str]] = {}
    for exp in expectations:
        wanted = edges.setdefault((exp.caller, exp.upstream), [])
        if exp.alert not in wanted:
            wanted.append(exp.alert)
    groups = []
    for index, run in enumerate(runs):
        for (caller, upstream), wanted in edges.items():
            policy = alerts.mesh.services[caller].upstreams[upstream]
            series = edge_series(run, caller, upstream, policy, step)
            name = f"run {index} {caller}->{upstream}"
            groups.append(Group(name, caller, upstream, tuple(series), tuple(wanted)))
    document = test_document(groups, step, evaluations)
    passed, output = run_promtool(alerts.promtool, alerts.rules, document)
    fired = firing_times(output, groups)
    if passed == bool(fired):  # a failure that is no firing alert (or the reverse)
        raise AlertEvaluationError(_unexpected("a failure that names no alert", output))
    out = []
    for exp in expectations:
        per_run = []
        for index in range(len(runs)):
            times = fired.get((f"run {index} {exp.caller}->{exp.upstream}", exp.alert))
            per_run.append(min(times) if times else None)
        out.append(tuple(per_run))
    return out
