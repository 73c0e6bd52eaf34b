"""Helpers of the observability tests: a compiled bundle whose error-ratio alert waits
ALERT_AFTER, and polling Prometheus's alerts."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from prometheus_server import PrometheusServer

from meshspec.compile.api import compile_spec
from meshspec.compile.emitters import prometheus

MESH = "observe"
CALLER = "checkout"
FAILING = "payments"
HEALTHY = "inventory"
OBJECTIVE = 0.99
ALERT_AFTER = 2.0
"""Seconds: the spec's objective.alert_after, so the rule's for: is 2s."""
MARGIN = 25.0
"""Seconds beyond for: for the first scrapes, rate()'s two samples and 1s evaluations."""
RATIO_ALERT = prometheus.ERROR_RATIO_ALERT


def compile_bundle(folder: Path, ports: Mapping[str, int]) -> Path:
    """A mesh where CALLER calls each service of ``ports`` (listening on 127.0.0.1 there),
    every edge with a 99% objective that alerts after ALERT_AFTER; returns the bundle."""
    spec = {
        "apiVersion": "meshspec/v1",
        "mesh": {"name": MESH, "datacenter": "dc1", "dns": {"zone": "observe.mesh.internal"}},
        "defaults": {
            "timeout": "2s",
            "retry": {"attempts": 1, "on": ["connect-failure", "timeout", "5xx"]},
            "load_balancer": {"strategy": "round_robin"},
            "objective": {"success_rate": f"{OBJECTIVE:.0%}", "alert_after": f"{ALERT_AFTER:g}s"},
        },
        "services": {
            CALLER: {
                "port": 8080,
                "instances": [{"address": "127.0.0.1"}],
                "upstreams": {name: {} for name in ports},
            },
            **{
                name: {"port": port, "instances": [{"address": "127.0.0.1", "port": port}]}
                for name, port in ports.items()
            },
        },
    }
    source = folder / "mesh.yaml"
    source.write_text(yaml.safe_dump(spec, sort_keys=False))
    out = folder / "bundle"
    compile_spec(source, out)
    return out


def rules_file(bundle: Path) -> Path:
    """The rules of the version the bundle home ``bundle`` publishes."""
    return bundle / "current" / prometheus.PATH


@dataclass
class AlertWatch:
    """What polling /api/v1/alerts saw of one edge's alert, and when (monotonic seconds)."""

    first_pending: float | None = None
    firing_at: float | None = None
    firing: dict[str, Any] = field(default_factory=dict)


def watch_until_firing(
    server: PrometheusServer, upstream: str, within: float, poll: float = 0.1
) -> AlertWatch:
    """Poll the alerts until CALLER -> ``upstream``'s error-ratio alert fires, or ``within``
    seconds pass (then the watch has no ``firing_at``)."""
    watch = AlertWatch()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for alert in server.alerts():
            labels = alert["labels"]
            if labels.get("alertname") != RATIO_ALERT or labels.get("upstream") != upstream:
                continue
            now = time.monotonic()
            if watch.first_pending is None:
                watch.first_pending = now
            if alert["state"] == "firing":
                watch.firing_at, watch.firing = now, alert
                return watch
        time.sleep(poll)
    return watch


def alerts_of(server: PrometheusServer, upstream: str) -> list[dict[str, Any]]:
    """Every alert (pending or firing) about CALLER -> ``upstream``."""
    return [
        alert
        for alert in server.alerts()
        if alert["labels"].get("caller") == CALLER and alert["labels"].get("upstream") == upstream
    ]


def wait_for_ratio(server: PrometheusServer, upstream: str, within: float) -> float:
    """The recorded error ratio of CALLER -> ``upstream`` once Prometheus has one."""
    deadline = time.monotonic() + within
    selector = f'{prometheus.ERROR_RATIO}{{caller="{CALLER}",upstream="{upstream}"}}'
    while time.monotonic() < deadline:
        result = server.query(selector)
        if result:
            return float(result[0]["value"][1])
        time.sleep(0.2)
    raise AssertionError(f"no {selector} within {within}s: {server.log_text()}")


def expected_labels(upstream: str) -> dict[str, str]:
    return {
        "alertname": RATIO_ALERT,
        "severity": prometheus.SEVERITIES[RATIO_ALERT],
        "mesh": MESH,
        "caller": CALLER,
        "upstream": upstream,
    }
