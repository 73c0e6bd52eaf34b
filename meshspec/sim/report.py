"""Report files: ``report.json`` (deterministic), ``report.html`` and ``plots/<service>.png``.

Files are written to a temporary folder beside the target and moved into place, so a failed
run never leaves a half-written report. A report folder holds a marker file
(:data:`REPORT_MARKER`): only a folder with it (a previous report), an empty folder or a path
that does not exist yet is ever replaced; anything else is refused, untouched.
"""

from __future__ import annotations

import base64
import html
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import orjson

from meshspec.sim.expect import EDGE_METRICS, SERVICE_METRICS, Kind, format_value

SERVICE_COLUMNS = (
    "requests",
    "success_rate",
    "goodput",
    "load_amplification",
    "latency_mean",
    "latency_p50",
    "latency_p99",
    "retries_denied",
    "breaker_open_time",
    "ejections",
    "recovery_time",
)
EDGE_COLUMNS = (
    "requests",
    "success_rate",
    "load_amplification",
    "latency_p99",
    "retries_denied",
    "breaker_trips",
    "breaker_open_time",
    "ejections",
)


TIMELINE_ROWS = 300
"""Timeline events shown in report.html (report.json has them all)."""
REPORT_MARKER = ".meshspec-report"
"""The file that marks a folder as a report ``meshspec simulate`` wrote (and may replace)."""
_MARKER_TEXT = "written by meshspec simulate --report; the folder is replaced by the next one\n"


class ReportFolderError(Exception):
    """The ``--report`` folder exists and is not one ``meshspec simulate`` may replace."""


def check_report_folder(directory: Path) -> None:
    """Raise :class:`ReportFolderError` unless ``directory`` is absent, an empty folder or a
    previous report (it holds :data:`REPORT_MARKER`). Touches nothing."""
    if not directory.exists() and not directory.is_symlink():
        return
    if not directory.is_dir():
        raise ReportFolderError("exists and is not a folder")
    if (directory / REPORT_MARKER).is_file():
        return
    if next(directory.iterdir(), None) is not None:
        raise ReportFolderError(
            f"exists, is not empty and is not a meshspec report (it has no {REPORT_MARKER} "
            "file); name a new or empty folder, or a previous report"
        )


def _fresh_folder(parent: Path, prefix: str) -> Path:
    """A new folder in ``parent``, with the mode new folders get (umask applied; unlike
    ``tempfile.mkdtemp``, whose folders are 0700)."""
    while True:
        path = parent / f"{prefix}{secrets.token_hex(6)}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path


def _unused_name(parent: Path, prefix: str) -> Path:
    while True:
        path = parent / f"{prefix}{secrets.token_hex(6)}"
        if not path.exists() and not path.is_symlink():
            return path


def describe_seeds(seeds: list[int]) -> str:
    """``seed 11``, ``4 seeds (11-14)``, ``3 seeds (1, 5-6)``: runs of consecutive seeds as
    ranges."""
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    runs: list[list[int]] = []
    for seed in sorted(seeds):
        if runs and seed == runs[-1][-1] + 1:
            runs[-1].append(seed)
        else:
            runs.append([seed])
    ranges = ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)
    return f"{len(seeds)} seeds ({ranges})"


def to_json(report: dict[str, Any]) -> str:
    """``report`` as JSON text: keys sorted, two-space indentation, a final newline.

    orjson encodes in C (a 1,000-service report: ~6 ms, against ~85 ms for the stdlib's
    pure-Python indenting encoder). A report is rounded (:func:`meshspec.sim.metrics.rounded`)
    and so holds no non-finite float; one that did anyway would be written as ``null``, which is
    what rounding makes of it. Keys that are not strings are refused (a ``TypeError``).
    """
    options = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
    return orjson.dumps(report, option=options).decode()


def plotted_services(report: dict[str, Any], limit: int = 12) -> list[str]:
    """Services worth a figure: those with requests, the busiest first (stable order)."""
    services = report["run"]["services"]
    busy = [name for name, row in services.items() if row["requests"]]
    return sorted(busy, key=lambda n: (-services[n]["requests"], n))[:limit]


def write_report(directory: Path, report: dict[str, Any]) -> Path:
    """Write the report folder atomically; returns the path of report.html."""
    from meshspec.sim.plots import service_figure

    directory = directory.resolve()
    check_report_folder(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = _fresh_folder(directory.parent, ".report-")
    try:
        (staging / REPORT_MARKER).write_text(_MARKER_TEXT, encoding="utf-8")
        (staging / "plots").mkdir()
        images: dict[str, bytes] = {}
        for service in plotted_services(report):
            png = service_figure(report["run"], service)
            (staging / "plots" / f"{service}.png").write_bytes(png)
            images[service] = png
        (staging / "report.json").write_text(to_json(report), encoding="utf-8")
        (staging / "report.html").write_text(render_html(report, images), encoding="utf-8")
        if directory.exists():
            check_report_folder(directory)  # again: the run took a while
            old = _unused_name(directory.parent, f".{directory.name}.old-")
            os.replace(directory, old)  # a previous report or an empty folder
            os.replace(staging, directory)
            shutil.rmtree(old)
        else:
            os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory / "report.html"


def _cell(metric: str, value: Any, table: dict[str, Kind]) -> str:
    if isinstance(value, dict):
        value = value.get("mean")
    kind = table.get(metric, Kind.COUNT)
    if metric == "goodput":
        kind = Kind.RATE
    if value is None and metric != "recovery_time":
        return "-"
    return format_value(kind, value, metric)


def _table(
    rows: dict[str, dict[str, Any]], columns: tuple[str, ...], kinds: dict[str, Kind]
) -> str:
    head = "".join(f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in columns)
    body = []
    for name, row in rows.items():
        cells = "".join(f"<td>{html.escape(_cell(c, row.get(c), kinds))}</td>" for c in columns)
        body.append(f"<tr><th>{html.escape(name)}</th>{cells}</tr>")
    return f"<table><tr><th></th>{head}</tr>{''.join(body)}</table>"


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#1d3557}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
td,th{border:1px solid #ccd;padding:4px 8px;text-align:right}
tr th:first-child{text-align:left}
.pass{color:#2a9d8f;font-weight:bold}.fail{color:#e63946;font-weight:bold}
img{max-width:100%;border:1px solid #ddd;margin:1em 0}
"""


def render_html(report: dict[str, Any], images: dict[str, bytes]) -> str:
    title = f"meshspec simulate: {report['scenario']}"
    verdict = "PASS" if report["passed"] else "FAIL"
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)} <span class='{verdict.lower()}'>{verdict}</span></h1>",
        f"<p>{html.escape(report['description'])}</p>" if report["description"] else "",
        f"<p>mesh <b>{html.escape(report['mesh'])}</b>, {report['duration']:g}s simulated, "
        f"{describe_seeds(report['seeds'])}.</p>",
    ]
    if report["expectations"]:
        parts.append(
            "<h2>Expectations</h2><table><tr><th>expectation</th><th>measured</th>"
            "<th>result</th></tr>"
        )
        for item in report["expectations"]:
            ok = "pass" if item["passed"] else "fail"
            parts.append(
                f"<tr><th>{html.escape(item['expectation'])}</th><td>{html.escape(item['shown'])}</td>"
                f"<td class='{ok}'>{ok.upper()}</td></tr>"
            )
        parts.append("</table>")
    if report["run"]["faults"]:
        parts.append("<h2>Faults</h2><ul>")
        for fault in report["run"]["faults"]:
            parts.append(
                f"<li>{html.escape(fault['kind'])} {html.escape(fault['target'])}: "
                f"{fault['start']:g}s - {fault['end']:g}s</li>"
            )
        parts.append("</ul>")
    events = report["run"].get("timeline", [])
    if events:
        parts.append("<h2>Timeline</h2><table><tr><th>time</th><th>where</th><th>event</th></tr>")
        for item in events[:TIMELINE_ROWS]:
            parts.append(
                f"<tr><td>{item['t']:.3f}s</td><td>{html.escape(item['subject'])}</td>"
                f"<td>{html.escape(item['event'])}</td></tr>"
            )
        parts.append("</table>")
        if len(events) > TIMELINE_ROWS:
            parts.append(f"<p>{len(events) - TIMELINE_ROWS} more events in report.json.</p>")
    totals = report.get("aggregate", report["run"])
    note = " (means over seeds)" if "aggregate" in report else ""
    parts.append(f"<h2>Services{note}</h2>")
    parts.append(_table(totals["services"], SERVICE_COLUMNS, SERVICE_METRICS))
    parts.append(f"<h2>Edges{note}</h2>")
    parts.append(_table(totals["edges"], EDGE_COLUMNS, EDGE_METRICS))
    if "compare" in report:
        parts.append("<h2>Comparison (candidate - baseline)</h2>")
        deltas = {
            name: {m: cell["delta"] for m, cell in row.items()}
            for name, row in report["compare"]["services"].items()
        }
        parts.append(_table(deltas, SERVICE_COLUMNS, SERVICE_METRICS))
    parts.append("<h2>Over time</h2>")
    for service, png in images.items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(
            f"<img alt='{html.escape(service)} over time' src='data:image/png;base64,{data}'>"
        )
    parts.append("</body></html>\n")
    return "\n".join(p for p in parts if p)
