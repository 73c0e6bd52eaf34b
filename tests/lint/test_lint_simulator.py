"""Lint's amplification against what the simulator measures.

On generated meshes where every leaf service answers 500 to everything, each entry service
receives outside traffic in turn, and the simulator measures ``relative_load``: attempts a
service received per request entering the mesh. Lint's worst-case amplification must bound
it for every service and every entry, and equal the largest measured value when no retry
budget on the worst path caps it.

The meshes are forests of call chains (each service calls at most one upstream, several
callers may share one): the simulated services call their upstreams in order and stop at the
first failure, so with more upstreams per service only the first branch would ever be
exercised. Breakers, outlier detection and throttling are off and timeouts generous, so the
retry policy alone decides the load.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from meshspec.lint import lint
from meshspec.sim.load import load_mesh, load_scenario
from meshspec.sim.runner import run_once
from meshspec.spec.loader import load_spec_located

MESHES = 20
BUDGETED = frozenset({3, 7, 11, 15, 19})
"""Meshes whose edges retry with a budget (ratio 50%, no per-second reserve): at most 1.5
attempts per call however many are configured."""


def _mesh(seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    count = rng.randint(3, 7)
    names = [f"s{i}" for i in range(count)]
    services: dict[str, dict[str, object]] = {}
    for index, name in enumerate(names):
        upstreams: dict[str, object] = {}
        # a chain link to a later service (acyclic), or a leaf
        if index < count - 1 and rng.random() < 0.8:
            upstream = names[rng.randint(index + 1, count - 1)]
            retry: dict[str, object] = {"attempts": rng.randint(1, 4)}
            if seed in BUDGETED:
                retry["attempts"] = rng.randint(2, 4)
                retry["budget"] = {"ratio": "50%", "min_per_second": 0, "window": "10s"}
            upstreams[upstream] = {"retry": retry}
        services[name] = {
            "port": 8000 + index,
            "instances": [{"address": f"10.0.{index}.{i + 1}"} for i in range(rng.randint(1, 3))],
            "upstreams": upstreams,
        }
    return {
        "apiVersion": "meshspec/v1",
        "mesh": {"name": f"gen{seed}", "dns": {"zone": "gen.internal"}},
        "defaults": {
            "timeout": "120s",
            "retry": {
                "on": ["5xx"],
                "backoff": {"base": "1ms", "max": "1ms", "jitter": "none"},
            },
            "circuit_breaker": "off",
            "outlier_detection": "off",
            "adaptive_throttle": "off",
            "load_balancer": {"strategy": "round_robin"},
            "health_check": "off",
        },
        "services": services,
    }


def _scenario(entry: str, leaves: list[str]) -> dict[str, object]:
    return {
        "apiVersion": "meshspec/v1",
        "kind": "Scenario",
        "name": f"leaves-fail-{entry}",
        "duration": "20s",
        "seed": 1,
        "traffic": [{"to": entry, "rate": "10/s", "arrival": "constant"}],
        "behaviour": {"default": {"latency": {"fixed": "1ms"}}},
        "faults": [
            {"at": "0s", "service": leaf, "fault": "errors", "rate": "100%", "status": 500}
            for leaf in leaves
        ],
    }


@pytest.mark.parametrize("seed", range(MESHES))
def test_amplification_bounds_what_the_simulator_measures(seed: int, tmp_path: Path) -> None:
    document = _mesh(seed)
    spec_path = tmp_path / "mesh.yaml"
    spec_path.write_text(yaml.safe_dump(document, sort_keys=False))
    spec, provenance = load_spec_located(spec_path)
    report = lint(spec, provenance)
    services = spec.services
    called = {u for s in services.values() for u in s.upstreams}
    entries = [name for name in services if name not in called]
    leaves = [name for name, s in services.items() if not s.upstreams]
    mesh = load_mesh(spec_path)

    measured: dict[str, float] = {name: 0.0 for name in services}
    for entry in entries:
        scenario_path = tmp_path / f"{entry}.yaml"
        scenario_path.write_text(yaml.safe_dump(_scenario(entry, leaves), sort_keys=False))
        loaded, _ = load_scenario(scenario_path, mesh)
        summary = run_once(loaded, mesh, seed=1)
        assert summary["entry_requests"] > 0
        for name, row in summary["services"].items():
            load = row["relative_load"] or 0.0
            bound = report.amplification[name].factor
            assert load <= bound * (1 + 1e-9), (entry, name, load, bound)
            measured[name] = max(measured[name], load)

    for name, worst in report.amplification.items():
        if not worst.capped:
            assert measured[name] == pytest.approx(worst.factor, rel=1e-6), (name, worst)
    if seed in BUDGETED:
        # the budget is what bounded some service, and the simulator stayed below its cap
        capped = [w for w in report.amplification.values() if w.capped]
        assert capped, "a budgeted mesh should have at least one capped path"
