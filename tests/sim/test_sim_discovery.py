"""Callers' discovery in the simulator is the runtime's DiscoveryCache, driven under SimPy."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from meshspec_runtime.discovery.cache import DiscoverySettings, Signal
from pydantic import ValidationError
from simrun import MESH

from meshspec.sim.discovery import CLOCK_STEP, Subscriber
from meshspec.sim.load import load_scenario
from meshspec.sim.metrics import summarise
from meshspec.sim.scenario import Discovery
from meshspec.sim.world import World

NO_RETRY = "retry: {attempts: 3, per_try_timeout: 500ms, backoff: {base: 10ms, max: 100ms}}"
SCENARIO = """\
apiVersion: meshspec/v1
kind: Scenario
name: discovery
mesh: mesh.yaml
duration: {duration}
seed: 5
traffic:
  - {{to: front, rate: 50/s}}
behaviour:
  default: {{latency: {{fixed: 2ms}}}}
faults:
{faults}
discovery: {discovery}
"""
SURVIVORS = {"back-2", "back-3"}
"""The instances of back left when ``instances: 50%`` (the first two) crash."""
ALL = {"back-0", "back-1", "back-2", "back-3"}


def _world(
    write: Callable[[str, str], Path], duration: str, faults: list[str], discovery: str
) -> tuple[World, dict[str, Any]]:
    """Run the scenario; the world (its caches) and the run's summary."""
    write("mesh.yaml", MESH.replace(NO_RETRY, "retry: off"))
    text = SCENARIO.format(
        duration=duration,
        faults="\n".join(f"  - {fault}" for fault in faults),
        discovery=discovery,
    )
    loaded, mesh = load_scenario(write("scenario.yaml", text))
    world = World(mesh, loaded.scenario, loaded.scenario.seed)
    recorder = world.run()
    return world, summarise(recorder, 0.99, None)


def _callers_of_back(world: World) -> list[Subscriber]:
    callers = list(world.faults.discovery.of("back"))
    assert len(callers) == 2  # one cache per front instance
    return callers


def _ids(endpoints: tuple[Any, ...]) -> set[str]:
    return {e.id for e in endpoints}


def _when(subscriber: Subscriber, signal: Signal) -> list[float]:
    return [at for at, said in subscriber.signals if said is signal]


def test_an_outage_keeps_the_last_known_good_set_and_a_probe_recovers_after_it(
    write: Callable[[str, str], Path],
) -> None:
    # back-1 and back-2 crash from 2 s to 12 s; discovery is out from 8 s to 18 s. Callers learn
    # of the crash before the outage, not of the restart during it: they stay on the two
    # survivors until a probe of the source's breaker succeeds after 18 s (cap: 4 s).
    world, _ = _world(
        write,
        "30s",
        [
            "{at: 2s, for: 10s, service: back, instances: 50%, fault: crash}",
            "{at: 8s, for: 10s, service: back, fault: discovery-outage}",
        ],
        "{backoff_cap: 4s}",
    )
    for caller in _callers_of_back(world):
        before = [_ids(ids) for at, ids in caller.published if at < 8]
        assert before[-1] == SURVIVORS  # the crashed ones left (one by one) before the outage
        failed, opened = _when(caller, Signal.FAILED), _when(caller, Signal.BREAKER_OPEN)
        assert failed and all(8 <= at < 18 for at in failed)
        assert len(opened) == 1 and opened[0] == failed[2]  # failure_threshold: 3
        # once open, the breaker's probes wait longer and longer (doubling, jittered), up to
        # the cap: 0.5-1 s, 1-2 s, then 2-4 s each
        gaps = [b - a for a, b in pairwise(failed[2:])]
        assert gaps[:3] == sorted(gaps[:3]) and gaps[0] >= 0.5 and max(gaps) <= 4
        # a closed breaker retrying every 250-500 ms would have failed 20 times in 10 s
        assert len(failed) < 10
        [recovered] = _when(caller, Signal.RECOVERED)
        # the view had the restart (the lag ran on during the outage): the probe finds it
        assert 18 <= recovered <= 18 + 4
        after = [(at, ids) for at, ids in caller.published if at >= 8]
        assert [(at, _ids(ids)) for at, ids in after] == [(recovered, ALL)]
        assert _ids(caller.policies.endpoints) == ALL


def test_an_outage_longer_than_max_staleness_falls_back_to_the_bundle_list(
    write: Callable[[str, str], Path],
) -> None:
    # back-1 and back-2 crash at 2 s for good; discovery is out from 8 s on. The survivors are
    # used for max_staleness (5 s) after the last good answer, then the bundle's list is back,
    # crashed instances included, and calls to them fail.
    world, summary = _world(
        write,
        "30s",
        [
            "{at: 2s, service: back, instances: 50%, fault: crash}",
            "{at: 8s, service: back, fault: discovery-outage}",
        ],
        "{max_staleness: 5s}",
    )
    bundle = {e.id for e in world.services["back"].model.endpoints}
    assert len(bundle) == 4
    for caller in _callers_of_back(world):
        [expired] = _when(caller, Signal.EXPIRED)
        last_good = caller.cache.last_good
        assert last_good <= 8
        assert last_good + 5 <= expired <= last_good + 5 + CLOCK_STEP
        assert [_ids(ids) for at, ids in caller.published if at < expired][-1] == SURVIVORS
        assert [(at, _ids(ids)) for at, ids in caller.published if at >= expired] == [
            (expired, bundle)
        ]
        assert _when(caller, Signal.RECOVERED) == []
    first_expiry = min(_when(c, Signal.EXPIRED)[0] for c in _callers_of_back(world))
    rates = summary["series"]["edges"]["front->back"]["success_rate"]
    assert all(rate == 1 for rate in rates[6:8])  # the survivors only, discovery still up
    assert all(rate < 0.9 for rate in rates[int(first_expiry) + 1 : 30])


def test_a_stale_record_delays_the_update_by_the_stale_delay(
    write: Callable[[str, str], Path],
) -> None:
    crash = "{at: 2s, service: back, instances: 50%, fault: crash}"
    fresh, _ = _world(write, "15s", [crash], "{jitter: 0s}")
    stale, _ = _world(
        write, "15s", [crash, "{at: 0s, service: back, add: 3s, fault: discovery-stale}"], "{}"
    )

    def dropped(world: World) -> list[float]:
        # when each caller stopped listing the crashed instances
        return [
            next(at for at, ids in caller.published if _ids(ids) == SURVIVORS)
            for caller in _callers_of_back(world)
        ]

    # the health checks run at the same phases (their own random stream) in both runs
    assert dropped(stale) == pytest.approx([at + 3 for at in dropped(fresh)], abs=1e-9)
    assert all(2 + 1 <= at <= 2 + 2 + 1 for at in dropped(fresh))  # interval 2s, failures 1


def test_every_instance_failing_keeps_the_last_known_good_set(
    write: Callable[[str, str], Path],
) -> None:
    # "none passing" is not "gone": the instances leave one by one (checks at random phases),
    # but the answer listing none of them is ignored and the last one stays.
    world, _ = _world(
        write, "15s", ["{at: 2s, for: 6s, service: back, fault: crash}"], "{propagation: 0s}"
    )
    for caller in _callers_of_back(world):
        [ignored] = _when(caller, Signal.EMPTY_IGNORED)
        assert 2 < ignored <= 2 + 2  # every check fails within one interval (2s)
        assert all(ids for _, ids in caller.published)
        shrinking = [ids for at, ids in caller.published if at <= ignored]
        assert [len(ids) for ids in shrinking] == [3, 2, 1]
        restored = [_ids(ids) for at, ids in caller.published if at > ignored]
        assert restored and restored[-1] == ALL  # back after the restart at 8 s


def test_the_same_seed_drives_the_caches_the_same_way(
    write: Callable[[str, str], Path],
) -> None:
    faults = [
        "{at: 2s, for: 10s, service: back, instances: 50%, fault: crash}",
        "{at: 4s, for: 6s, fault: discovery-outage}",
    ]
    runs = [_world(write, "20s", faults, "{jitter: 500ms}")[0] for _ in range(2)]
    logs = [
        [(s.service, s.signals, s.published, s.reads) for s in world.faults.discovery.subscribers]
        for world in runs
    ]
    assert logs[0] == logs[1]
    assert any(signals for _, signals, _, _ in logs[0])


def test_cache_settings_that_contradict_the_defaults_are_refused_with_them() -> None:
    assert Discovery().cache_settings() == DiscoverySettings()
    assert Discovery.model_validate({"max_staleness": "5s"}).cache_settings().max_staleness == 5
    with pytest.raises(ValidationError, match=r"backoff_cap must be >= backoff_base.*cap 30s"):
        Discovery.model_validate({"backoff_base": "1m"})
