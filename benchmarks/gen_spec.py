"""Generate large, valid mesh specs for benchmarks (deterministic, acyclic call graph).

``generate(services=5000, instances=4, upstreams=3)`` returns YAML text: service ``i`` calls
up to ``upstreams`` services with higher indexes, so the call graph has no cycle. The compile
benchmark reuses it. Run as a script to write a file::

    python benchmarks/gen_spec.py --services 5000 > /tmp/big.yaml
"""

from __future__ import annotations

import argparse
import random
import sys

HEADER = """\
apiVersion: meshspec/v1
mesh:
  name: big
  datacenter: dc1
  dns: {zone: big.mesh.internal, ttl: 30s}
defaults:
  timeout: 2s
  retry:
    attempts: 3
    per_try_timeout: 500ms
    backoff: {base: 25ms, max: 1s, jitter: full}
    on: [connect-failure, timeout, 5xx]
    budget: {ratio: 20%, min_per_second: 10/s, window: 10s}
  circuit_breaker:
    window: {kind: count, size: 100}
    minimum_calls: 20
    failure_rate: 50%
    open_for: 30s
  load_balancer: {strategy: least_request, choices: 2}
  outlier_detection: {consecutive_failures: 5, base_ejection: 30s, max_ejected: 50%}
  health_check: {http: /healthz, interval: 10s, timeout: 2s, deregister_after: 1m}
services:
"""

_EDGE_STYLES = (
    "{}",
    "{timeout: 1s, retry: {attempts: 2}}",
    "{timeout: 1500ms, retry: {per_try_timeout: 400ms, on: [connect-failure, 503]}}",
    "{circuit_breaker: {failure_rate: 30%, open_for: 10s}, concurrency_limit: 100}",
    "{load_balancer: {strategy: peak_ewma}, objective: {success_rate: 99.5%}}",
)


def service_name(index: int) -> str:
    return f"svc-{index:05d}"


def generate(services: int = 5000, instances: int = 4, upstreams: int = 3, seed: int = 1) -> str:
    """A valid spec of ``services`` services as YAML text (about 0.7 KB per service)."""
    rng = random.Random(seed)
    lines = [HEADER]
    for index in range(services):
        name = service_name(index)
        lines.append(f"  {name}:\n")
        lines.append(f"    port: {8000 + index % 1000}\n")
        lines.append(f"    protocol: {'grpc' if index % 3 == 0 else 'http'}\n")
        lines.append(f"    tags: [team-{index % 40}, tier-{index % 3}]\n")
        lines.append(
            f"    meta: {{team: team-{index % 40}, owner: group-{index % 7}, "
            f"runbook: wiki/runbooks/{name}}}\n"
        )
        if index % 3 == 0:
            lines.append("    health_check: {grpc: mesh.v1.Health, interval: 5s, timeout: 1s}\n")
        lines.append("    instances:\n")
        for instance in range(instances):
            octets = f"10.{index // 250 % 256}.{index % 250}.{instance + 10}"
            weight = f", weight: {1 + instance % 3}" if instance % 2 else ""
            lines.append(f"      - {{address: {octets}, id: {name}-{instance}{weight}}}\n")
        later = range(index + 1, services)
        chosen = sorted(rng.sample(later, min(upstreams, len(later))))
        if chosen:
            lines.append("    upstreams:\n")
            for upstream in chosen:
                style = _EDGE_STYLES[rng.randrange(len(_EDGE_STYLES))]
                lines.append(f"      {service_name(upstream)}: {style}\n")
    return "".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=5000)
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--upstreams", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sys.stdout.write(generate(args.services, args.instances, args.upstreams, args.seed))


if __name__ == "__main__":
    main()
