"""The terminal summary: tables of services and edges, expectations as PASS/FAIL lines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from meshspec.sim.expect import (
    EDGE_METRICS,
    NOT_RECOVERED,
    SERVICE_METRICS,
    Kind,
    Verdict,
    format_value,
)
from meshspec.sim.report import EDGE_COLUMNS, SERVICE_COLUMNS, describe_seeds

HEADINGS = {
    "requests": "requests",
    "success_rate": "success",
    "goodput": "goodput",
    "load_amplification": "amplif.",
    "latency_mean": "mean",
    "latency_p50": "p50",
    "latency_p99": "p99",
    "retries_denied": "denied",
    "breaker_trips": "trips",
    "breaker_open_time": "brk open",
    "ejections": "ejected",
    "recovery_time": "recovery",
}


def _text(metric: str, cell: Any, kinds: dict[str, Kind]) -> str:
    ci = None
    if isinstance(cell, dict):
        cell, ci = cell.get("mean"), cell.get("ci95")
    kind = kinds.get(metric, Kind.COUNT)
    if cell is None:
        return NOT_RECOVERED if metric == "recovery_time" else "-"
    text = format_value(kind, cell)
    if ci:
        text += f" ±{format_value(kind, (ci[1] - ci[0]) / 2)}"
    return text


def _table(
    title: str, rows: dict[str, dict[str, Any]], columns: Sequence[str], kinds: dict[str, Kind]
) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("", no_wrap=True)
    for column in columns:
        table.add_column(HEADINGS.get(column, column), justify="right", no_wrap=True)
    for name, row in rows.items():
        requests = row.get("requests")
        if isinstance(requests, dict):
            requests = requests.get("mean")
        if requests is not None and not requests and "compare" not in title:
            continue
        table.add_row(name, *(_text(c, row.get(c), kinds) for c in columns))
    return table


def print_summary(console: Console, report: dict[str, Any], verdicts: Sequence[Verdict]) -> None:
    totals = report.get("aggregate", report["run"])
    seeds = report["seeds"]
    console.print(
        f"[bold]{report['scenario']}[/] on mesh [bold]{report['mesh']}[/]: "
        f"{report['duration']:g}s simulated, {describe_seeds(seeds)}"
        + ("" if len(seeds) == 1 else ", mean ±95% CI")
    )
    console.print(_table("services", totals["services"], SERVICE_COLUMNS, SERVICE_METRICS))
    console.print(_table("edges", totals["edges"], EDGE_COLUMNS, EDGE_METRICS))
    if "compare" in report:
        rows = {
            name: {m: cell["delta"] for m, cell in row.items()}
            for name, row in report["compare"]["services"].items()
        }
        console.print(
            _table("compare: candidate - baseline", rows, SERVICE_COLUMNS, SERVICE_METRICS)
        )
    for verdict in verdicts:
        exp = verdict.expectation
        measured = verdict.shown
        if verdict.ci is not None:
            measured += f" (95% CI {format_value(exp.kind, verdict.ci[0])}"
            measured += f" - {format_value(exp.kind, verdict.ci[1])})"
        mark = "[green]PASS[/]" if verdict.passed else "[red]FAIL[/]"
        # escaped: "recovery_time[crash@5s]" is not rich markup
        console.print(f"{mark} {escape(exp.text)}  [dim]measured[/] {measured}", highlight=False)
    if verdicts:
        failed = sum(not v.passed for v in verdicts)
        console.print(
            f"{len(verdicts) - failed} passed, {failed} failed"
            if failed
            else f"all {len(verdicts)} expectations passed"
        )
