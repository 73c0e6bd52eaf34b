"""Per combination: each expectation's pass rate over the seeds, each metric's mean with its
95% confidence interval, and whether the combination passes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from meshspec.sim.expect import (
    Expectation,
    ExpectationError,
    Kind,
    format_value,
    judge,
    measure,
    parse,
)
from meshspec.sim.metrics import rounded
from meshspec.sim.runner import confidence
from meshspec.sweep.work import RunResult


@dataclass(frozen=True, slots=True)
class Metric:
    """A measured quantity: ``checkout.success_rate``, ``checkout->payments.load_amplification``."""

    name: str
    expectation: Expectation
    """A dummy comparison whose subject and metric say what to measure."""

    @property
    def kind(self) -> Kind:
        return self.expectation.kind

    def shown(self, value: float | None) -> str:
        return format_value(self.kind, value)


def metric(name: str) -> Metric:
    """``subject.metric``; ExpectationError (a ValueError) when there is no such metric."""
    exp = parse(f"{name} >= 0" + ("s" if _is_time(name) else ""))
    if not isinstance(exp, Expectation):
        raise ExpectationError(f"{name!r} is not a metric")
    return Metric(f"{exp.subject}.{exp.metric}", exp)


def _is_time(name: str) -> bool:
    from meshspec.sim.expect import ALIASES, EDGE_METRICS, SERVICE_METRICS

    tail = name.rsplit(".", 1)[-1]
    tail = ALIASES.get(tail, tail)
    kind = SERVICE_METRICS.get(tail) or EDGE_METRICS.get(tail)
    return kind is Kind.TIME


@dataclass(frozen=True)
class Row:
    key: str
    overrides: tuple[str, ...]
    seeds: int
    """Runs that finished."""
    failed: int
    """Runs that failed (their worker died twice, or the run raised)."""
    pass_rates: tuple[float, ...]
    """Per expectation: the share of finished seeds in which it held."""
    means: tuple[tuple[float | None, tuple[float, float] | None], ...]
    """Per metric: mean and 95% CI over the seeds (None when a seed had no value)."""
    all_pass_rate: float
    """Share of seeds in which every expectation held."""
    passed: bool

    def as_dict(self, expectations: Sequence[str], metrics: Sequence[Metric]) -> dict[str, Any]:
        out = {
            "combination": list(self.overrides),
            "seeds": self.seeds,
            "failed_runs": self.failed,
            "passed": self.passed,
            "all_pass_rate": self.all_pass_rate,
            "pass_rates": dict(zip(expectations, self.pass_rates, strict=True)),
            "metrics": {
                m.name: {"mean": mean, "ci95": list(ci) if ci else None}
                for m, (mean, ci) in zip(metrics, self.means, strict=True)
            },
        }
        result: dict[str, Any] = rounded(out)
        return result


def summarise_combination(
    key: str,
    overrides: tuple[str, ...],
    results: Sequence[RunResult],
    expectations: Sequence[Expectation],
    metrics: Sequence[Metric],
    required_pass_rate: float,
    expected_seeds: int,
) -> Row:
    """One row from a combination's runs, in seed order (so engines agree to the bit)."""
    ordered = sorted(results, key=lambda r: r.seed)
    finished = [r for r in ordered if r.ok]
    failed = len(ordered) - len(finished)
    held = [[judge(e, measure(e, r.totals)).passed for e in expectations] for r in finished]
    count = len(finished)
    pass_rates = tuple(
        sum(row[i] for row in held) / count if count else 0.0 for i in range(len(expectations))
    )
    all_pass = sum(all(row) for row in held) / count if count else 0.0
    means: list[tuple[float | None, tuple[float, float] | None]] = []
    for m in metrics:
        values = [measure(m.expectation, r.totals) for r in finished]
        present = [v for v in values if v is not None]
        if not present or len(present) < len(values):
            means.append((None, None))
            continue
        mean, ci = confidence(present)
        means.append((mean, ci))
    passed = (
        failed == 0
        and count == expected_seeds
        and all(rate >= required_pass_rate for rate in pass_rates)
    )
    return Row(key, overrides, count, failed, pass_rates, tuple(means), all_pass, passed)
