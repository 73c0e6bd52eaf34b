"""A real Prometheus loads a compiled bundle's rules, scrapes hand-written exposition text of
two edges (one failing above its objective, one below), and fires exactly the failing edge's
error-ratio alert once its for: has elapsed."""

from __future__ import annotations

import time
from pathlib import Path

from meshspec_runtime.observe import names
from observe_kit import (
    ALERT_AFTER,
    CALLER,
    FAILING,
    HEALTHY,
    MARGIN,
    OBJECTIVE,
    alerts_of,
    compile_bundle,
    expected_labels,
    rules_file,
    wait_for_ratio,
    watch_until_firing,
)
from prometheus_server import StartPrometheus
from scrape_target import serving_text
from support import free_port

from meshspec.compile.emitters.prometheus import FAILED, SUCCESS

CALLS_PER_SECOND = 100.0
FAILING_RATIO = 5 * (1 - OBJECTIVE)  # 5%, above the 1% allowed
HEALTHY_RATIO = (1 - OBJECTIVE) / 10  # 0.1%, below it


def exposition(elapsed: float) -> str:
    """Counters grown for ``elapsed`` seconds at CALLS_PER_SECOND on each edge."""
    metric = names.REQUESTS
    lines = [f"# HELP {metric.name} {metric.help}", f"# TYPE {metric.name} counter"]
    for upstream, ratio in ((FAILING, FAILING_RATIO), (HEALTHY, HEALTHY_RATIO)):
        calls = CALLS_PER_SECOND * elapsed
        for outcome, count in ((SUCCESS, calls * (1 - ratio)), (FAILED, calls * ratio)):
            labels = f'caller="{CALLER}",upstream="{upstream}",outcome="{outcome}"'
            lines.append(f"{metric.name}{{{labels}}} {count:.6f}")
    return "\n".join(lines) + "\n"


def test_the_failing_edge_fires_after_for_and_the_healthy_one_stays_quiet(
    start_prometheus: StartPrometheus, tmp_path: Path
) -> None:
    bundle = compile_bundle(tmp_path, {FAILING: free_port(), HEALTHY: free_port()})
    started = time.monotonic()
    with serving_text(lambda: exposition(time.monotonic() - started)) as target:
        server = start_prometheus([rules_file(bundle)], [target])
        watch = watch_until_firing(server, FAILING, within=ALERT_AFTER + MARGIN)
        assert watch.firing_at is not None, (
            f"no firing alert within {ALERT_AFTER + MARGIN}s: {server.alerts()} "
            f"{server.rule_health()} {server.log_text()}"
        )
        assert watch.first_pending is not None
        # pending first, for at least for: (less the 0.1s polling step)
        assert watch.firing_at - watch.first_pending >= ALERT_AFTER - 0.2
        assert watch.firing["labels"] == expected_labels(FAILING)
        assert float(watch.firing["value"]) > 1 - OBJECTIVE
        # the healthy edge is scraped and its ratio recorded, but it raises nothing
        healthy_ratio = wait_for_ratio(server, HEALTHY, within=5)
        assert 0 < healthy_ratio < 1 - OBJECTIVE
        time.sleep(ALERT_AFTER + 1)
        assert alerts_of(server, HEALTHY) == []
        assert [health for _, health, _ in server.rule_health()] == ["ok"] * len(
            server.rule_health()
        )
