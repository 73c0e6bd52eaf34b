"""Running scenarios from tests: load (with an environment or YAML edits) and summarise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from meshspec.sim.load import LoadedScenario, load_mesh, load_scenario
from meshspec.sim.runner import Source, run_once
from meshspec.sim.scenario import Scenario


def run(
    path: Path, env: str | None = None, seed: int | None = None, **edits: Any
) -> dict[str, Any]:
    """Summary of one run of the scenario at ``path``; ``edits`` replace top-level keys."""
    loaded, mesh = Source(path, env=env).load()
    if edits:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data.update(edits)
        scenario = Scenario.model_validate(data)
        loaded = LoadedScenario(path, scenario, loaded.expectations, loaded.mesh_path)
    return run_once(loaded, mesh, loaded.scenario.seed if seed is None else seed)


__all__ = ["LoadedScenario", "load_mesh", "load_scenario", "run"]
