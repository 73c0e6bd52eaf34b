"""Retry budgets of scope service in the simulator: the runtime's shared budget and exchange,
against a simulated store (scenarios/published/README.md: the client-count inversion)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from meshspec_runtime.shared.exchange import SharingState
from simrun import run
from support import REPO

from meshspec.sim.runner import Source, run_once
from meshspec.sim.world import World

pytestmark = pytest.mark.slow

PUBLISHED = REPO / "scenarios" / "published"
INVERSION = PUBLISHED / "brooker-inversion.yaml"
MESHES = {
    10: "brooker-clients-10.yaml",
    100: "brooker-mesh.yaml",
    1000: "brooker-clients-1000.yaml",
}


def _load(clients: int, env: str) -> dict[str, Any]:
    source = Source(INVERSION, spec=PUBLISHED / MESHES[clients], env=env)
    loaded, mesh = source.load()
    edge: dict[str, Any] = run_once(loaded, mesh, loaded.scenario.seed)["edges"]["client->server"]
    return edge


def test_per_client_buckets_let_load_grow_with_the_clients_and_a_shared_one_does_not() -> None:
    """Brooker: adaptive retries with a bucket per client, 1.14x at 10 clients to 1.87x at
    1,000 (plain retries: 1.88x). The same bucket shared: its 10% whatever the count."""
    buckets = {n: _load(n, "bucket")["load_amplification"] for n in MESHES}
    shared = {n: _load(n, "shared")["load_amplification"] for n in MESHES}
    assert buckets[10] == pytest.approx(1.11, abs=0.03)
    assert buckets[10] < buckets[100] < buckets[1000]
    assert buckets[1000] >= 1.75  # near the 1.88x of plain retries
    for clients, load in shared.items():
        # 10 tokens to start plus 10% of the ~10,000 requests: 1.10x
        assert load == pytest.approx(1.10, abs=0.01), clients


def test_the_published_scenario_passes_its_expectation_by_default() -> None:
    edge = run(INVERSION)["edges"]["client->server"]
    assert edge["load_amplification"] <= 1.11


def _with_outage(tmp_path: Path, clients: int) -> Path:
    """brooker-inversion.yaml at ``clients`` clients, the store out from 3 s to 6 s."""
    text = INVERSION.read_text().replace(
        "budget_store: {latency: 1ms, period: 100ms}",
        "budget_store: {latency: 1ms, period: 100ms, timeout: 50ms}\n"
        "faults:\n  - {fault: budget-store-outage, at: 3s, for: 3s}",
    )
    text = text.replace(f"mesh: {MESHES[1000]}", f"mesh: {MESHES[clients]}")
    path = tmp_path / "outage.yaml"
    path.write_text(text)
    (tmp_path / MESHES[clients]).write_text((PUBLISHED / MESHES[clients]).read_text())
    return path


def test_a_store_outage_falls_back_to_local_shares_and_sharing_resumes(tmp_path: Path) -> None:
    loaded, mesh = Source(_with_outage(tmp_path, 10)).load()
    assert loaded.scenario.budget_store.timeout == 0.05
    assert loaded.scenario.faults[0].fault == "budget-store-outage"
    world = World(mesh, loaded.scenario, seed=1)
    recorder = world.run()
    assert len(world.exchanges) == 10
    for exchange in world.exchanges:
        assert exchange.state is SharingState.SHARED  # rejoined
        assert exchange.budget.view.fallbacks == 1
        assert exchange.budget.view.members == 10
    attempts = recorder.edge("client", "server").attempts
    calls = recorder.edge("@traffic", "client").attempts
    # in the outage (3 s to 6 s, noticed within 0.2 s) each client decides alone with a tenth
    # of the bucket's 10 tokens and its own 10% of a token a request
    during = sum(attempts[4:6]) / sum(calls[4:6])
    before = sum(attempts[1:3]) / sum(calls[1:3])
    after = sum(attempts[8:10]) / sum(calls[8:10])
    assert before == pytest.approx(1.10, abs=0.02)
    assert during == pytest.approx(1.10, abs=0.02)
    assert after == pytest.approx(1.10, abs=0.02)
