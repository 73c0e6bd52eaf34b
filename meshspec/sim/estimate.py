"""Estimates of what a run will cost, from the scenario and the mesh, checked against the caps
of :mod:`meshspec.sim.caps` before the run starts (each excess a located error, E0506)."""

from __future__ import annotations

import math
from collections.abc import Callable

from meshspec.sim.behaviour import DEFAULT_KEY, DEFAULT_LATENCY
from meshspec.sim.caps import (
    DRAIN_CAP,
    EDGE_SERIES,
    MAX_CALLS,
    MAX_SERIES_CELLS,
    MIN_CLIENT_CYCLE,
    SERVICE_SERIES,
)
from meshspec.sim.mesh import MeshModel
from meshspec.sim.scenario import Scenario, Traffic

E_TOO_BIG = "E0506"


def calls_per_request(scenario: Scenario, mesh: MeshModel) -> dict[str, float]:
    """Per service: the calls one request entering there makes, itself included (the spec's
    call graph is acyclic)."""
    memo: dict[str, float] = {}

    def calls(name: str) -> float:
        if name not in memo:
            own = scenario.behaviour.get(name)
            shares = own.calls if own is not None else {}
            memo[name] = 1.0 + sum(
                shares.get(upstream, 1.0) * calls(upstream)
                for upstream in mesh.services[name].upstreams
                if upstream in mesh.services
            )
        return memo[name]

    return {name: calls(name) for name in mesh.services}


def requests_of(traffic: Traffic, scenario: Scenario) -> float:
    """Requests ``traffic`` sends over the run, estimated (from above for open loop)."""
    start = traffic.start
    stop = min(traffic.stop if traffic.stop is not None else scenario.duration, scenario.duration)
    window = max(0.0, stop - start)
    if traffic.clients is not None:
        own = scenario.behaviour.get(traffic.to)
        base = scenario.behaviour.get(DEFAULT_KEY)
        latency = (
            own.latency
            if own is not None and own.latency is not None
            else base.latency
            if base is not None and base.latency is not None
            else DEFAULT_LATENCY
        )
        cycle = max(MIN_CLIENT_CYCLE, traffic.think + latency.typical())
        return traffic.clients * window / cycle
    # the rate, sampled in the middle of every second, plus each spike whole (a spike shorter
    # than a second may fall between samples)
    rate_at: Callable[[float], float] = traffic.rate_at
    seconds = math.ceil(window)
    sampled = sum(rate_at(start + i + 0.5) for i in range(seconds))
    return sampled + sum(spike.rate * spike.for_ for spike in traffic.spikes)


def series_cells(scenario: Scenario, mesh: MeshModel) -> int:
    """Per-second counter cells the run allocates (as :class:`meshspec.sim.world.World`)."""
    seconds = max(1, math.ceil(scenario.duration))
    drain = min(max(t.timeout for t in scenario.traffic), max(scenario.duration, DRAIN_CAP))
    slots = seconds + math.ceil(drain) + 1
    edges = len(mesh.edges()) + len({t.to for t in scenario.traffic})
    return slots * (EDGE_SERIES * edges + SERVICE_SERIES * len(mesh.services))


def check_caps(scenario: Scenario, mesh: MeshModel) -> list[tuple[tuple[str | int, ...], str]]:
    """``(path, message)`` for each cap the run would exceed; empty when it fits."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    cells = series_cells(scenario, mesh)
    if cells > MAX_SERIES_CELLS:
        problems.append(
            (
                ("duration",),
                f"the run would keep {cells:,} per-second counters (run and drain seconds x "
                f"edges and services), above the simulator's cap of {MAX_SERIES_CELLS:,}: "
                "shorten the duration",
            )
        )
    per_request = calls_per_request(scenario, mesh)
    loads = [requests_of(t, scenario) * per_request.get(t.to, 1.0) for t in scenario.traffic]
    total = sum(loads)
    if total > MAX_CALLS:
        heaviest = max(range(len(loads)), key=loads.__getitem__)
        field = "clients" if scenario.traffic[heaviest].clients is not None else "rate"
        problems.append(
            (
                ("traffic", heaviest, field),
                f"the run would make about {total:,.0f} calls (requests entering the mesh x "
                f"the calls each makes, retries not counted), above the simulator's cap of "
                f"{MAX_CALLS:,}: lower the {field} or shorten the duration",
            )
        )
    return problems
