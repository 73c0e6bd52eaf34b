"""Disturbances: the windows a run's recovery is measured from (faults, spikes, ramps).

Each has a name: the one the scenario gives (``name:``) or ``<kind>@<start>`` (``crash@5s``,
``spike@30s``), with ``#2``, ``#3`` ... when several would share it. Expectations can name one
(``checkout.recovery_time[crash@5s] <= 30s``); the names are known before the run.
"""

from __future__ import annotations

from meshspec.sim.metrics import FaultWindow
from meshspec.sim.scenario import Partition, Scenario


def disturbances(scenario: Scenario) -> list[FaultWindow]:
    """Every disturbance of the run, in the scenario's order: faults, then traffic changes."""
    duration = scenario.duration
    found: list[tuple[str | None, str, str, float, float]] = []
    for fault in scenario.faults:
        target = getattr(fault, "service", None) or ""
        if isinstance(fault, Partition):
            target = " <-> ".join(fault.between)
        found.append((fault.name, fault.fault, target, fault.at, fault.end(duration)))
    for traffic in scenario.traffic:
        for spike in traffic.spikes:
            end = min(duration, spike.at + spike.for_)
            found.append((spike.name, "spike", traffic.to, spike.at, end))
        for ramp in traffic.ramps:
            end = min(duration, ramp.at + ramp.for_)
            found.append((ramp.name, "ramp", traffic.to, ramp.at, end))
    taken: set[str] = {name for name, *_ in found if name is not None}
    out: list[FaultWindow] = []
    for name, kind, target, start, end in found:
        if name is None:
            base = f"{kind}@{start:g}s"
            name, n = base, 1
            while name in taken:
                n += 1
                name = f"{base}#{n}"
            taken.add(name)
        out.append(FaultWindow(kind, target, start, end, name))
    return out
