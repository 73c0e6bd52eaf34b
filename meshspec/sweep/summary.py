"""The sweep's result as a document (``sweep.json``) and as a table on the terminal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from meshspec.sim.metrics import rounded
from meshspec.sweep.plan import Plan
from meshspec.sweep.run import Settings, distance
from meshspec.sweep.space import Combination
from meshspec.sweep.table import Row

FORMAT = 1
MAX_PRINTED_ROWS = 40


def build_document(
    plan: Plan,
    settings: Settings,
    rows: Sequence[tuple[Combination, Row]],
    own: tuple[Combination, Row],
    nearest: Combination | None,
) -> dict[str, Any]:
    """Deterministic: no clock, no paths; rows in grid order."""

    def row_data(point: Combination, row: Row) -> dict[str, Any]:
        data = row.as_dict(plan.expectations, settings.metrics)
        data["values"] = [plan.axes[k].values[i].text for k, i in enumerate(point.indexes)]
        for metric in settings.metrics:
            cell = data["metrics"][metric.name]
            shown = metric.shown(cell["mean"])
            if cell["ci95"]:
                low, high = cell["ci95"]
                shown += f" ±{metric.shown((high - low) / 2)}"
            cell["shown"] = shown
        return data

    own_point, own_row = own
    document: dict[str, Any] = {
        "format": FORMAT,
        "scenario": plan.scenario_name,
        "mesh": plan.mesh_name,
        "duration": plan.duration,
        "seeds": list(settings.seeds),
        "required_pass_rate": settings.required_pass_rate,
        "axes": [
            {"path": a.path, "label": a.label, "values": [v.text for v in a.values]}
            for a in plan.axes
        ],
        "expectations": list(plan.expectations),
        "metrics": [m.name for m in settings.metrics],
        "rows": [row_data(point, row) for point, row in rows],
        "own_settings": row_data(own_point, own_row),
        "nearest_passing": list(nearest.overrides) if nearest is not None else None,
        "failed_runs": sum(row.failed for _, row in rows)
        + (own_row.failed if own_point.key not in {p.key for p, _ in rows} else 0),
    }
    out: dict[str, Any] = rounded(document)
    return out


def print_table(console: Console, plan: Plan, document: dict[str, Any]) -> None:
    rows = document["rows"]
    shown = rows
    if len(rows) > MAX_PRINTED_ROWS:  # the ones nearest the spec's own settings
        order = sorted(
            range(len(rows)),
            key=lambda k: distance(plan, _point(plan, rows[k])),
        )
        keep = set(order[:MAX_PRINTED_ROWS])
        shown = [row for k, row in enumerate(rows) if k in keep]
    table = Table(
        title=f"{document['scenario']} on {document['mesh']}: "
        f"{len(rows)} combinations x {len(document['seeds'])} seeds "
        "(pass rate per expectation; metric mean ±95% CI)",
        title_justify="left",
        header_style="bold",
    )
    for axis in document["axes"]:
        table.add_column(axis["label"], no_wrap=True)
    for index in range(len(document["expectations"])):
        table.add_column(f"E{index + 1}", justify="right", no_wrap=True)
    for name in document["metrics"]:
        table.add_column(name, justify="right")
    table.add_column("passes", justify="center")
    for row in shown:
        table.add_row(*_cells(document, row))
    console.print(table)
    if len(shown) < len(rows):
        console.print(
            f"[dim]{len(rows) - len(shown)} more combinations in sweep.json "
            "(the table shows those nearest the spec's own settings)[/]"
        )
    for index, text in enumerate(document["expectations"]):
        console.print(f"[dim]E{index + 1}:[/] {text}", highlight=False)


def _point(plan: Plan, row: dict[str, Any]) -> Combination:
    indexes = tuple(
        [v.text for v in axis.values].index(value)
        for axis, value in zip(plan.axes, row["values"], strict=True)
    )
    return Combination(indexes, tuple(row["combination"]))


def _cells(document: dict[str, Any], row: dict[str, Any]) -> list[str]:
    cells = [str(v) for v in row["values"]]
    cells += [f"{row['pass_rates'][e]:.0%}" for e in document["expectations"]]
    cells += [row["metrics"][m]["shown"] for m in document["metrics"]]
    mark = "[green]yes[/]" if row["passed"] else "[red]no[/]"
    if row["failed_runs"]:
        mark += f" [red]({row['failed_runs']} failed)[/]"
    return [*cells, mark]


def print_verdict(console: Console, document: dict[str, Any]) -> None:
    own = document["own_settings"]
    rates = ", ".join(
        f"E{i + 1} {own['pass_rates'][e]:.0%}" for i, e in enumerate(document["expectations"])
    )
    if own["passed"]:
        console.print(f"[green]PASS[/] the spec's own settings pass every expectation ({rates})")
    else:
        failed = f"; {own['failed_runs']} runs failed" if own["failed_runs"] else ""
        console.print(f"[red]FAIL[/] the spec's own settings: {rates}{failed}")
    nearest = document["nearest_passing"]
    if nearest is None:
        console.print("no combination passes every expectation", highlight=False)
    elif not own["passed"]:
        console.print(f"nearest passing combination: {', '.join(nearest)}", highlight=False)
    if document["failed_runs"]:
        console.print(
            f"[red]{document['failed_runs']} runs failed[/] (their combinations cannot pass; "
            "run the same command again to retry them)"
        )
