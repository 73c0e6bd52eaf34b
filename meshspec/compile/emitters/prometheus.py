"""``prometheus/rules.yml`` (alert rules) and ``prometheus/rules.test.yml`` (their promtool tests).

The rules scale with the mesh the way SLO tooling lays them out: a recording rule computes every
edge's error ratio ``by (caller, upstream)``; each edge gets one constant *objective series*
(its success-rate objective, labelled with the edge); and a handful of alerts compare the two
``on (caller, upstream)``. The per-edge part is one short line, so a mesh of thousands of
edges has a small rules file. An edge whose ``alert_after`` is not the default carries it as a
label, and each distinct ``alert_after`` gets its own error-ratio alert (``for:`` is per rule);
the default one selects the series without the label.

The breaker-open and budget-exhausted alerts need no per-edge marker: an edge without a
circuit breaker never reports ``state="open"`` at 1, and one whose retries have no budget
never counts budget refusals, so each alert can only fire where it applies.

Metric and label names come from ``meshspec_runtime.observe.names`` (what the runtime
exports). Expressions and label values are quoted here (YAML double-quoted scalars, PromQL
string literals), so the templates only lay them out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from meshspec_runtime.observe import names
from meshspec_runtime.policy.breaker import BreakerState

from meshspec.compile.ir import Edge, ResolvedMesh
from meshspec.compile.templating import promql_string, render, yaml_string
from meshspec.spec.resolve import DEFAULT_ALERT_AFTER

PATH: Final = "prometheus/rules.yml"
TEST_PATH: Final = "prometheus/rules.test.yml"
WINDOW: Final = "5m"
SUCCESS: Final = "success"
"""The ``outcome`` label value of a call that did not fail (one of ``names.OUTCOMES``)."""
FAILED: Final = next(outcome for outcome in names.OUTCOMES if outcome != SUCCESS)
"""An ``outcome`` of a failed call, for the unit tests' input series."""
OPEN: Final = BreakerState.OPEN.value
CLOSED: Final = BreakerState.CLOSED.value
CALLER, UPSTREAM = names.EDGE
ALERT_AFTER_LABEL: Final = "alert_after"

ERROR_RATIO: Final = f"meshspec:upstream_error_ratio:rate{WINDOW}"
"""Recorded: the share of an edge's calls that failed over the window, by caller, upstream."""
OBJECTIVE: Final = "meshspec:objective:ratio"
"""Recorded: one constant series per edge, its success-rate objective (0.999)."""

ERROR_RATIO_ALERT: Final = "MeshspecUpstreamErrorRatioHigh"
BREAKER_ALERT: Final = "MeshspecCircuitBreakerOpen"
BUDGET_ALERT: Final = "MeshspecRetryBudgetExhausted"
BREAKER_ALERT_AFTER: Final = 60.0
BUDGET_ALERT_AFTER: Final = 300.0

SUMMARIES: Final = {
    ERROR_RATIO_ALERT: "{edge}: error ratio above the objective for {wait}",
    BREAKER_ALERT: "{edge}: circuit breaker open for {wait}",
    BUDGET_ALERT: "{edge}: retry budget exhausted, retries are being dropped",
}
SEVERITIES: Final = {ERROR_RATIO_ALERT: "page", BREAKER_ALERT: "warning", BUDGET_ALERT: "warning"}

_BY_EDGE = f"by ({CALLER}, {UPSTREAM})"
_ON_EDGE = f"on ({CALLER}, {UPSTREAM})"


@dataclass(frozen=True, slots=True)
class Alert:
    name: str
    expr: str
    """A YAML scalar, quoted (as is ``summary``)."""
    wait: str
    severity: str
    summary: str


@dataclass(frozen=True, slots=True)
class Representative:
    """One edge standing for every edge with its (objective, alert_after) in the unit tests."""

    caller: str
    upstream: str
    objective: float
    alert_after: float


def emit(mesh: ResolvedMesh) -> dict[str, bytes]:
    edges = [(service.name, edge) for service in mesh.services for edge in service.edges]
    if not edges:
        empty = render("rules.yml.j2", mesh=yaml_string(mesh.name), objectives=(), alerts=())
        return {PATH: empty}
    quoted = {service.name: yaml_string(service.name) for service in mesh.services}
    record = yaml_string(OBJECTIVE)
    objectives = "\n".join(objective_series(record, caller, edge, quoted) for caller, edge in edges)
    waits = sorted({edge.alert_after for _, edge in edges})
    has_breaker = any(edge.policy.circuit_breaker is not None for _, edge in edges)
    has_budget = any(edge.policy.retry.budget is not None for _, edge in edges)
    alerts = [error_ratio_alert(wait) for wait in waits]
    if has_breaker:
        alerts.append(breaker_alert())
    if has_budget:
        alerts.append(budget_alert())
    rules = render(
        "rules.yml.j2",
        mesh=yaml_string(mesh.name),
        objectives_group=yaml_string(f"meshspec:{mesh.name}:objectives"),
        alerts_group=yaml_string(f"meshspec:{mesh.name}:alerts"),
        ratio_record=yaml_string(ERROR_RATIO),
        ratio_expr=yaml_string(error_ratio_expr()),
        objectives=objectives,
        alerts=alerts,
    )
    return {PATH: rules, TEST_PATH: unit_tests(mesh.name, edges)}


def error_ratio_expr() -> str:
    requests = names.REQUESTS.name
    failed = f"{requests}{{outcome!={promql_string(SUCCESS)}}}"
    return (
        f"sum {_BY_EDGE} (rate({failed}[{WINDOW}])) / sum {_BY_EDGE} (rate({requests}[{WINDOW}]))"
    )


def objective_series(record: str, caller: str, edge: Edge, quoted: dict[str, str]) -> str:
    """The edge's objective series: one recording rule, one line of the rules file (built
    here, not in the template: a large mesh has hundreds of thousands of edges). ``record``:
    the quoted rule name; ``quoted``: service name -> its YAML scalar."""
    extra = ""
    if edge.alert_after != DEFAULT_ALERT_AFTER:
        extra = f", {ALERT_AFTER_LABEL}: {yaml_string(prometheus_duration(edge.alert_after))}"
    source = quoted.get(caller) or yaml_string(caller)
    target = quoted.get(edge.upstream) or yaml_string(edge.upstream)
    value = yaml_string(number(edge.objective))
    return (
        f"  - {{record: {record}, expr: {value}, labels: {{{CALLER}: {source}, "
        f"{UPSTREAM}: {target}{extra}}}}}"
    )


def error_ratio_alert(alert_after: float) -> Alert:
    wait = prometheus_duration(alert_after)
    # A series without the label matches ="" : the edges whose alert_after is the default.
    label = "" if alert_after == DEFAULT_ALERT_AFTER else wait
    objective = f"{OBJECTIVE}{{{ALERT_AFTER_LABEL}={promql_string(label)}}}"
    return _alert(ERROR_RATIO_ALERT, f"{ERROR_RATIO} > {_ON_EDGE} (1 - {objective})", wait)


def breaker_alert() -> Alert:
    state = f"{names.BREAKER_STATE.name}{{state={promql_string(OPEN)}}}"
    return _alert(
        BREAKER_ALERT, f"max {_BY_EDGE} ({state}) > 0", prometheus_duration(BREAKER_ALERT_AFTER)
    )


def budget_alert() -> Alert:
    exhausted = f"rate({names.BUDGET_EXHAUSTED.name}[{WINDOW}])"
    return _alert(
        BUDGET_ALERT, f"sum {_BY_EDGE} ({exhausted}) > 0", prometheus_duration(BUDGET_ALERT_AFTER)
    )


def _alert(name: str, expr: str, wait: str) -> Alert:
    title = f"{{{{ $labels.{CALLER} }}}} -> {{{{ $labels.{UPSTREAM} }}}}"
    summary = SUMMARIES[name].format(edge=title, wait=wait)
    return Alert(name, yaml_string(expr), wait, SEVERITIES[name], yaml_string(summary))


def number(value: float) -> str:
    """A PromQL number: 12 significant digits, so 99.9% / 100 reads 0.999."""
    return f"{value:.12g}"


def prometheus_duration(seconds: float) -> str:
    """``seconds`` in Prometheus's duration syntax (``5m``, ``1m30s``, ``500ms``), to the ms."""
    millis = round(seconds * 1000)
    if millis < 0:
        raise ValueError(f"negative duration: {seconds}s")
    if millis == 0:
        return "0s"
    text = ""
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, millis = divmod(millis, size)
        if count:
            text += f"{count}{unit}"
    return text


# --- promtool unit tests ------------------------------------------------------------------------

STEP: Final = 60
"""Seconds between input samples and between rule evaluations in the unit tests."""
_REQUESTS_PER_STEP: Final = 1000.0


@dataclass(frozen=True, slots=True)
class InputSeries:
    series: str
    """A YAML scalar, quoted (as is ``values``)."""
    values: str


@dataclass(frozen=True, slots=True)
class ExpectedAlert:
    labels: str
    """A YAML flow mapping: every label of the alert."""
    summary: str
    """A YAML scalar, quoted: the summary as Prometheus expands it for this edge."""


@dataclass(frozen=True, slots=True)
class AlertCheck:
    eval_time: str
    alertname: str
    firing: tuple[ExpectedAlert, ...]


@dataclass(frozen=True, slots=True)
class TestCase:
    name: str
    inputs: tuple[InputSeries, ...]
    checks: tuple[AlertCheck, ...]


def unit_tests(mesh: str, edges: list[tuple[str, Edge]]) -> bytes:
    """promtool tests: the error-ratio alert fires after ``for:`` above each distinct objective
    and stays quiet below it; the breaker and budget alerts fire when they apply."""
    chosen = representatives(edges)
    breaker_edge = next((e for e in edges if e[1].policy.circuit_breaker is not None), None)
    budget_edge = next((e for e in edges if e[1].policy.retry.budget is not None), None)
    firing = _firing_case(mesh, chosen, breaker_edge, budget_edge)
    quiet = _quiet_case(chosen, breaker_edge, budget_edge)
    return render(
        "rules.test.yml.j2",
        mesh=yaml_string(mesh),
        rule_file=yaml_string(PATH.rsplit("/", 1)[1]),
        step=prometheus_duration(STEP),
        cases=(firing, quiet),
    )


def representatives(edges: Iterable[tuple[str, Edge]]) -> list[Representative]:
    """The first edge (in mesh order) of each distinct (objective, alert_after)."""
    seen: dict[tuple[float, float], Representative] = {}
    for caller, edge in edges:
        key = (edge.objective, edge.alert_after)
        if key not in seen:
            seen[key] = Representative(caller, edge.upstream, *key)
    return list(seen.values())


def _steps(seconds: float) -> int:
    return max(1, math.ceil(seconds / STEP))


def _fires_at(alert_after: float, first_value_at: int) -> int:
    """The evaluation step at which an alert whose expression holds from ``first_value_at``
    on starts firing: pending there, firing once ``for:`` has elapsed."""
    return first_value_at + _steps(alert_after)


def _selector(metric: str, caller: str, upstream: str, **labels: str) -> str:
    pairs = [(CALLER, caller), (UPSTREAM, upstream), *labels.items()]
    inner = ",".join(f"{name}={promql_string(value)}" for name, value in pairs)
    return yaml_string(f"{metric}{{{inner}}}")


def _counter(increment: float, steps: int) -> str:
    return yaml_string(f"0+{number(increment)}x{steps}")


def _requests(rep: Representative, failure_ratio: float, steps: int) -> list[InputSeries]:
    failed = _REQUESTS_PER_STEP * failure_ratio
    metric = names.REQUESTS.name
    return [
        InputSeries(
            _selector(metric, rep.caller, rep.upstream, outcome=SUCCESS),
            _counter(_REQUESTS_PER_STEP - failed, steps),
        ),
        InputSeries(
            _selector(metric, rep.caller, rep.upstream, outcome=FAILED),
            _counter(failed, steps),
        ),
    ]


def _above(objective: float) -> float | None:
    """A failure ratio clearly above the objective's allowance (None: none exists)."""
    allowed = 1.0 - objective
    if allowed >= 1.0:
        return None  # a 0% objective: no ratio exceeds it, the alert can never fire
    if allowed <= 0.0:
        return 0.5
    return min(2 * allowed, (1 + allowed) / 2)


def _horizon(chosen: list[Representative]) -> int:
    """Steps the input series must cover: past the latest firing time of any alert."""
    waits = [rep.alert_after for rep in chosen] + [BREAKER_ALERT_AFTER, BUDGET_ALERT_AFTER]
    return _fires_at(max(waits), 1) + 1


def _expected(mesh: str, name: str, wait: float, caller: str, upstream: str) -> ExpectedAlert:
    labels = {
        "alertname": name,
        "severity": SEVERITIES[name],
        "mesh": mesh,
        CALLER: caller,
        UPSTREAM: upstream,
    }
    flow = ", ".join(f"{key}: {yaml_string(value)}" for key, value in labels.items())
    summary = SUMMARIES[name].format(edge=f"{caller} -> {upstream}", wait=prometheus_duration(wait))
    return ExpectedAlert("{" + flow + "}", yaml_string(summary))


def _at(step: int) -> str:
    return prometheus_duration(step * STEP)


def _firing_case(
    mesh: str,
    chosen: list[Representative],
    breaker_edge: tuple[str, Edge] | None,
    budget_edge: tuple[str, Edge] | None,
) -> TestCase:
    steps = _horizon(chosen)
    inputs: list[InputSeries] = []
    fires: dict[int, list[ExpectedAlert]] = {}
    for rep in chosen:
        ratio = _above(rep.objective)
        if ratio is None:
            continue
        inputs += _requests(rep, ratio, steps)
        # rate() needs two samples: the ratio exists from step 1 on.
        fires.setdefault(_fires_at(rep.alert_after, 1), []).append(
            _expected(mesh, ERROR_RATIO_ALERT, rep.alert_after, rep.caller, rep.upstream)
        )
    checks: list[AlertCheck] = []
    # At each firing time and the step before it, exactly the edges due by then fire.
    for step in sorted({t for at in fires for t in (at - 1, at)}):
        due = tuple(edge for at, edges in sorted(fires.items()) if at <= step for edge in edges)
        checks.append(AlertCheck(_at(step), ERROR_RATIO_ALERT, due))
    if breaker_edge is not None:
        caller, edge = breaker_edge
        inputs.append(
            InputSeries(
                _selector(names.BREAKER_STATE.name, caller, edge.upstream, state=OPEN),
                yaml_string(f"1x{steps}"),
            )
        )
        at = _fires_at(BREAKER_ALERT_AFTER, 0)  # a gauge: the expression holds from step 0
        expected = _expected(mesh, BREAKER_ALERT, BREAKER_ALERT_AFTER, caller, edge.upstream)
        checks += [
            AlertCheck(_at(at - 1), BREAKER_ALERT, ()),
            AlertCheck(_at(at), BREAKER_ALERT, (expected,)),
        ]
    if budget_edge is not None:
        caller, edge = budget_edge
        inputs.append(
            InputSeries(
                _selector(names.BUDGET_EXHAUSTED.name, caller, edge.upstream),
                _counter(3, steps),
            )
        )
        at = _fires_at(BUDGET_ALERT_AFTER, 1)
        expected = _expected(mesh, BUDGET_ALERT, BUDGET_ALERT_AFTER, caller, edge.upstream)
        checks += [
            AlertCheck(_at(at - 1), BUDGET_ALERT, ()),
            AlertCheck(_at(at), BUDGET_ALERT, (expected,)),
        ]
    name = "above the objectives: each alert fires once its for: has elapsed, not before"
    return TestCase(name, tuple(inputs), tuple(checks))


def _quiet_case(
    chosen: list[Representative],
    breaker_edge: tuple[str, Edge] | None,
    budget_edge: tuple[str, Edge] | None,
) -> TestCase:
    steps = _horizon(chosen)
    inputs: list[InputSeries] = []
    for rep in chosen:
        inputs += _requests(rep, (1.0 - rep.objective) / 2, steps)
    alertnames = [ERROR_RATIO_ALERT]
    if breaker_edge is not None:
        caller, edge = breaker_edge
        for state, value in ((OPEN, "0"), (CLOSED, "1")):
            inputs.append(
                InputSeries(
                    _selector(names.BREAKER_STATE.name, caller, edge.upstream, state=state),
                    yaml_string(f"{value}x{steps}"),
                )
            )
        alertnames.append(BREAKER_ALERT)
    if budget_edge is not None:
        caller, edge = budget_edge
        inputs.append(
            InputSeries(
                _selector(names.BUDGET_EXHAUSTED.name, caller, edge.upstream),
                _counter(0, steps),
            )
        )
        alertnames.append(BUDGET_ALERT)
    checks = tuple(AlertCheck(_at(steps - 1), name, ()) for name in alertnames)
    return TestCase("below the objectives: nothing fires", tuple(inputs), checks)
