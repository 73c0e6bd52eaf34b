"""The sweep's report folder: ``sweep.json`` (the table), ``report.html`` and one heat map
per expectation over two varied settings, the passing region outlined.

Each file is written to a temporary name and renamed into place, so an interrupted write never
leaves a half-written file; ``runs.jsonl`` (the results as they arrived) sits beside them.
"""

from __future__ import annotations

import html
import io
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from meshspec.sweep.plan import Plan
from meshspec.sweep.space import Combination
from meshspec.sweep.table import Metric, Row

MAX_HEATMAPS = 6


def write_atomically(path: Path, data: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def heatmap(
    plan: Plan,
    cells: dict[tuple[int, int], Row],
    axes: tuple[int, int],
    title: str,
    value_of: Any,
    shown: Any,
    limits: tuple[float, float] | None = None,
) -> bytes:
    """A PNG: rows of axis ``axes[0]`` by columns of axis ``axes[1]``; passing cells outlined,
    the spec's own settings starred."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Rectangle

    first, second = plan.axes[axes[0]], plan.axes[axes[1]]
    grid = np.full((len(first.values), len(second.values)), np.nan)
    for (i, j), row in cells.items():
        value = value_of(row)
        if value is not None:
            grid[i, j] = value
    width = max(4.0, 1.0 + 0.9 * len(second.values))
    height = max(3.0, 1.0 + 0.6 * len(first.values))
    figure, ax = plt.subplots(figsize=(width, height), dpi=100)
    low, high = limits if limits is not None else (None, None)
    image = ax.imshow(grid, cmap="viridis", aspect="auto", origin="lower", vmin=low, vmax=high)
    figure.colorbar(image, ax=ax)
    ax.set_xticks(range(len(second.values)), [v.text for v in second.values])
    ax.set_yticks(range(len(first.values)), [v.text for v in first.values])
    ax.set_xlabel(second.label)
    ax.set_ylabel(first.label)
    ax.set_title(title, fontsize=10)
    for (i, j), row in cells.items():
        value = value_of(row)
        ax.text(j, i, shown(value), ha="center", va="center", fontsize=8, color="white")
        if row.passed:
            ax.add_patch(
                Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2.5)
            )
    own_i, own_j = plan.baseline[axes[0]], plan.baseline[axes[1]]
    if own_i is not None and own_j is not None:
        ax.plot([own_j], [own_i], marker="*", markersize=16, color="orange")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def heatmaps(
    plan: Plan, rows: Sequence[tuple[Combination, Row]], metrics: Sequence[Metric]
) -> dict[str, bytes]:
    """Over the first two axes (the others held at the spec's own value, or their first)."""
    if len(plan.axes) < 2:
        return {}
    fixed = [own if own is not None else 0 for own in plan.baseline]
    cells: dict[tuple[int, int], Row] = {}
    for point, row in rows:
        if len(point.indexes) != len(plan.axes):
            continue
        if all(point.indexes[k] == fixed[k] for k in range(2, len(plan.axes))):
            cells[(point.indexes[0], point.indexes[1])] = row
    held = ", ".join(
        f"{a.label}={a.values[fixed[k]].text}" for k, a in enumerate(plan.axes) if k >= 2
    )
    suffix = f" ({held})" if held else ""
    out = {
        "all-expectations.png": heatmap(
            plan,
            cells,
            (0, 1),
            f"share of seeds passing every expectation{suffix}",
            lambda r: r.all_pass_rate,
            lambda v: f"{v:.0%}",
            (0.0, 1.0),
        )
    }
    for index, metric in enumerate(metrics[: MAX_HEATMAPS - 1]):
        out[f"metric-{index + 1}.png"] = heatmap(
            plan,
            cells,
            (0, 1),
            f"{metric.name}, mean over seeds{suffix}",
            lambda r, i=index: r.means[i][0],
            metric.shown,
        )
    return out


def write_report(directory: Path, document: dict[str, Any], images: dict[str, bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=1, sort_keys=True, allow_nan=False) + "\n"
    write_atomically(directory / "sweep.json", text.encode("utf-8"))
    for name, data in images.items():
        write_atomically(directory / name, data)
    page = directory / "report.html"
    write_atomically(page, render_html(document, list(images)).encode("utf-8"))
    return page


def render_html(document: dict[str, Any], images: Sequence[str]) -> str:
    e = html.escape
    axes = [a["label"] for a in document["axes"]]
    expectations = document["expectations"]
    head = "".join(f"<th>{e(a)}</th>" for a in axes)
    head += "".join(f"<th>E{i + 1}</th>" for i in range(len(expectations)))
    head += "".join(f"<th>{e(m)}</th>" for m in document["metrics"])
    head += "<th>runs</th><th>passes</th>"
    body = []
    for row in document["rows"]:
        values = row.get("values") or ["(spec)"] * len(axes)
        cells = "".join(f"<td>{e(str(v))}</td>" for v in values)
        cells += "".join(f"<td>{row['pass_rates'][x]:.0%}</td>" for x in expectations)
        for m in document["metrics"]:
            cell = row["metrics"][m]
            cells += f"<td>{e(cell.get('shown', '-'))}</td>"
        cells += (
            f"<td>{row['seeds']}"
            + (f" ({row['failed_runs']} failed)" if row["failed_runs"] else "")
            + "</td>"
        )
        mark = "✓" if row["passed"] else "✗"
        body.append(f"<tr class={'pass' if row['passed'] else 'fail'}>{cells}<td>{mark}</td></tr>")
    legend = "".join(f"<li>E{i + 1}: <code>{e(x)}</code></li>" for i, x in enumerate(expectations))
    nearest = document.get("nearest_passing")
    verdict = (
        "the spec's own settings pass every expectation"
        if document["own_settings"]["passed"]
        else "the spec's own settings do not pass every expectation"
    )
    found = (
        f"nearest passing combination: <code>{e(', '.join(nearest))}</code>"
        if nearest
        else ("no combination passes every expectation")
    )
    pictures = "".join(f'<p><img src="{e(name)}" alt="{e(name)}"></p>' for name in images)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>sweep: {e(document["scenario"])}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;text-align:right}}
tr.pass{{background:#e8f6e8}}tr.fail{{background:#fbeaea}}</style></head><body>
<h1>{e(document["scenario"])} on {e(document["mesh"])}</h1>
<p>{len(document["seeds"])} seeds per combination; {verdict}; {found}.</p>
<ul>{legend}</ul>
<table><tr>{head}</tr>{"".join(body)}</table>
<p>Heat maps: red outline = every expectation passes; star = the spec's own settings.</p>
{pictures}
</body></html>
"""
