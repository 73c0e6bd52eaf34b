"""Alert rules size benchmark: the rules file of a generated mesh, before and after issue 11.

"Before" is the emitter as it was until then (three alert rules per caller -> upstream edge,
each with its own expression), reproduced below as ``legacy_rules`` from that emitter's code
and template; "after" is ``meshspec.compile.emitters.prometheus`` (recording rules, one
objective series per edge, a handful of alerts by edge). Prints the bytes of both, their
ratio, and the emit times (medians and ranges, the two interleaved, the collector paused for
both as in a compile). tests/compile/test_prom_rules.py holds ``legacy_rules`` to a tenfold
reduction on a smaller mesh.

    python benchmarks/rules_size.py [--services 5000] [--runs 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jinja2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_spec import generate

from meshspec.compile.emitters import prometheus
from meshspec.compile.ir import Edge, ResolvedMesh
from meshspec.compile.resolve import resolve_mesh
from meshspec.compile.templating import promql_string, yaml_string
from meshspec.gcpause import collector_paused
from meshspec.spec import load_spec

_LEGACY_TEMPLATE = """\
# Alert rules compiled by meshspec for mesh {{ mesh }}. Metrics: docs/metrics.md.
{% if not groups %}
groups: []
{% else %}
groups:
{% for group in groups %}
  - name: {{ group[0] }}
    rules:
{% for caller, upstream, alerts in group[1] %}
{% for name, expr, wait, severity, summary in alerts %}
      - alert: {{ name }}
        expr: {{ expr }}
        for: {{ wait }}
        labels:
          severity: {{ severity }}
          mesh: {{ mesh }}
          caller: {{ caller }}
          upstream: {{ upstream }}
        annotations:
          summary: {{ summary }}
{% endfor %}
{% endfor %}
{% endfor %}
{% endif %}
"""

_ENVIRONMENT = jinja2.Environment(
    autoescape=False, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True
)
_LEGACY = _ENVIRONMENT.from_string(_LEGACY_TEMPLATE)

Legacy = tuple[str, str, str, str, str]


def _legacy_edge(caller: str, edge: Edge) -> list[Legacy]:
    selector = f"caller={promql_string(caller)},upstream={promql_string(edge.upstream)}"
    title = f"{caller} -> {edge.upstream}"
    max_errors = f"{1.0 - edge.objective:.6g}"
    requests = "meshspec_upstream_requests_total"
    alerts = [
        (
            "MeshspecUpstreamErrorRatioHigh",
            yaml_string(
                f'sum(rate({requests}{{{selector},outcome!="success"}}[5m])) / '
                f"sum(rate({requests}{{{selector}}}[5m])) > {max_errors}"
            ),
            "5m",
            "page",
            yaml_string(f"{title}: error ratio above {max_errors} for 5m"),
        )
    ]
    if edge.policy.circuit_breaker is not None:
        alerts.append(
            (
                "MeshspecCircuitBreakerOpen",
                yaml_string(f'max(meshspec_circuit_breaker_state{{{selector},state="open"}}) > 0'),
                "1m",
                "warning",
                yaml_string(f"{title}: circuit breaker open for 1m"),
            )
        )
    if edge.policy.retry.budget is not None:
        alerts.append(
            (
                "MeshspecRetryBudgetExhausted",
                yaml_string(
                    f"sum(rate(meshspec_retry_budget_exhausted_total{{{selector}}}[5m])) > 0"
                ),
                "5m",
                "warning",
                yaml_string(f"{title}: retry budget exhausted, retries are being dropped"),
            )
        )
    return alerts


def legacy_rules(mesh: ResolvedMesh) -> bytes:
    """The rules file the emitter wrote before issue 11: three alerts per edge."""
    groups = [
        (
            yaml_string(f"meshspec:{mesh.name}:{service.name}"),
            [
                (
                    yaml_string(service.name),
                    yaml_string(edge.upstream),
                    _legacy_edge(service.name, edge),
                )
                for edge in service.edges
            ],
        )
        for service in mesh.services
        if service.edges
    ]
    return _LEGACY.render(mesh=yaml_string(mesh.name), groups=groups).encode("utf-8")


def timed_interleaved(
    contenders: dict[str, Callable[[], object]], runs: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in contenders}
    with collector_paused():
        for _ in range(runs):
            for name, action in contenders.items():
                start = time.perf_counter()
                action()
                times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=5000)
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--upstreams", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="meshspec-rules-bench-"))
    try:
        spec_path = work / "big.yaml"
        spec_path.write_text(generate(args.services, args.instances, args.upstreams))
        with collector_paused():
            mesh = resolve_mesh(load_spec(spec_path))
        edges = sum(len(service.edges) for service in mesh.services)
        old = legacy_rules(mesh)
        new = prometheus.emit(mesh)
        rules, tests = new[prometheus.PATH], new[prometheus.TEST_PATH]
        print(f"mesh: {args.services} services, {edges} edges")
        print(f"  before (3 alerts per edge):            {len(old):>12,} bytes")
        print(f"  after  (rules.yml):                    {len(rules):>12,} bytes")
        print(f"  ratio before / after:                  {len(old) / len(rules):12.1f}x")
        print(f"  after, its promtool tests (rules.test.yml): {len(tests):,} bytes")
        times = timed_interleaved(
            {"before": lambda: legacy_rules(mesh), "after": lambda: prometheus.emit(mesh)},
            args.runs,
        )
        print(f"emit time, {args.runs} runs interleaved, collector paused:")
        for name, values in times.items():
            print(
                f"  {name:6} median {statistics.median(values) * 1000:8.1f} ms"
                f"  range {min(values) * 1000:.1f}-{max(values) * 1000:.1f} ms"
            )
        ratio = statistics.median(times["before"]) / statistics.median(times["after"])
        print(f"  ratio before / after (medians): {ratio:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
