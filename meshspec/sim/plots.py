"""Plots of one run: per service, success rate, load, latency and breaker state over time,
with fault windows shaded. matplotlib with the Agg backend (no display needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

FAULT_COLOURS = ("#f4a261", "#e76f51", "#9d4edd", "#2a9d8f", "#e9c46a", "#577590")


def _shade(ax: Axes, faults: Sequence[dict[str, Any]], label: bool) -> None:
    for i, fault in enumerate(faults):
        ax.axvspan(
            fault["start"],
            fault["end"],
            color=FAULT_COLOURS[i % len(FAULT_COLOURS)],
            alpha=0.18,
            lw=0,
            label=f"{fault['kind']} {fault['target']}".strip() if label else None,
        )


def _masked(values: Sequence[float | None]) -> list[float]:
    return [float("nan") if v is None else float(v) for v in values]


def service_figure(run: dict[str, Any], service: str) -> bytes:
    """A PNG: four panels sharing the time axis."""
    series = run["series"]["services"][service]
    faults = run["faults"]
    seconds = list(range(len(series["requests"])))
    fig, axes = plt.subplots(4, 1, figsize=(10, 9.5), sharex=True, layout="constrained")
    fig.suptitle(f"{service}", fontsize=14, fontweight="bold")
    success, load, latency, breaker = axes

    rate = [None if v is None else 100 * v for v in series["success_rate"]]
    success.plot(seconds, _masked(rate), color="#1d3557", lw=1.4, label="success rate")
    success.set_ylabel("success rate (%)")
    low = min([v for v in rate if v is not None] or [100.0])
    success.set_ylim(max(0.0, min(low, 99.0) - 2), 100.5)
    _shade(success, faults, label=True)
    success.legend(loc="lower left", fontsize=8, ncol=3, framealpha=0.9)

    load.plot(seconds, series["offered"], color="#e63946", lw=1.2, label="attempts sent to it")
    load.plot(seconds, series["requests"], color="#457b9d", lw=1.2, label="logical requests")
    load.plot(seconds, series["served"], color="#2a9d8f", lw=1.2, label="served OK")
    for kind, colour in (("retries", "#f4a261"), ("timeouts", "#9d4edd"), ("refusals", "#6c757d")):
        if any(series.get(kind, ())):
            load.plot(seconds, series[kind], color=colour, lw=1.0, ls="--", label=kind)
    load.set_ylabel("per second")
    load.set_ylim(bottom=0)
    _shade(load, faults, label=False)
    load.legend(loc="upper left", fontsize=8, ncol=3, framealpha=0.9)

    p50 = [None if v is None else 1000 * v for v in series["latency_p50"]]
    p99 = [None if v is None else 1000 * v for v in series["latency_p99"]]
    latency.plot(seconds, _masked(p50), color="#457b9d", lw=1.2, label="p50")
    latency.plot(seconds, _masked(p99), color="#e63946", lw=1.2, label="p99")
    latency.set_ylabel("latency of successes (ms)")
    if any(v for v in p99 if v):
        latency.set_yscale("log")
    _shade(latency, faults, label=False)
    latency.legend(loc="upper left", fontsize=8, ncol=2, framealpha=0.9)

    opened = [100 * v for v in series["breaker_open"]]
    breaker.fill_between(seconds, opened, color="#e76f51", alpha=0.6, step="post", lw=0)
    breaker.set_ylabel("callers' breakers open (%)")
    breaker.set_ylim(0, 105)
    breaker.set_xlabel("time (s)")
    _shade(breaker, faults, label=False)

    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.set_xlim(0, max(1, len(seconds)))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()
