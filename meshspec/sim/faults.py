"""Faults over time, and discovery: how (and how late) callers learn an instance is gone.

Discovery follows the spec: an instance that stops answering leaves its callers' endpoint
lists only once its health check has failed ``failures`` times in a row (checks every
``interval``, at a random phase per instance; a hung instance fails a check only when the
check's ``timeout`` expires), plus the scenario's propagation delay. Until
then callers keep sending to it, and only their own outlier detection and breakers help. What
callers make of the catalog is the runtime's discovery cache, driven by
:mod:`meshspec.sim.discovery`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from meshspec_runtime.policy.outcome import Outcome, OutcomeKind
from simpy.events import Event, Timeout

from meshspec.sim.discovery import SimDiscovery
from meshspec.sim.scenario import (
    AddedLatency,
    Capacity,
    Crash,
    DiscoveryOutage,
    DiscoveryStale,
    Errors,
    Hang,
    InstanceFaults,
    Partition,
    StoreOutage,
)

if TYPE_CHECKING:
    from meshspec.sim.world import Instance, SimService, World

Process = Generator[Event, Any, Any]


class FaultSchedule:
    def __init__(self, world: World) -> None:
        self.world = world
        self.rng = random.Random(f"{world.seed}/discovery")
        self.active: dict[int, list[InstanceFaults]] = {}
        """id(instance) -> the instance faults upon it now."""
        self.catalog: dict[str, set[str]] = {
            name: {i.endpoint.id for i in s.instances} for name, s in world.services.items()
        }
        """Service -> ids of the instances discovery lists as passing."""
        self.discovery = SimDiscovery(world, self.catalog)
        self.crash_starts: dict[int, list[float]] = {}
        """id(instance) -> start times of the crash faults upon it, latest first."""

    def start(self) -> None:
        world = self.world
        for fault in world.scenario.faults:
            if isinstance(fault, Crash):
                crashed = world.services[fault.service]
                for instance_id in fault.pick([i.endpoint.id for i in crashed.instances]):
                    instance = crashed.by_id[instance_id]
                    self.crash_starts.setdefault(id(instance), []).append(fault.at)
        for service in world.services.values():
            for instance in service.instances:
                starts = self.crash_starts.get(id(instance))
                if starts:
                    starts.sort(reverse=True)
                    instance.next_crash = starts[-1]
        for fault in world.scenario.faults:
            world.env.process(self._window(fault, fault.end(world.duration)))
        for service in world.services.values():
            health = service.model.health
            if health is None:
                continue
            for instance in service.instances:
                world.env.process(self._health_check(service, instance))
        self.discovery.start()

    # --- fault windows -------------------------------------------------------------------------

    def _window(self, fault: Any, end: float) -> Process:
        env = self.world.env
        yield Timeout(env, fault.at)
        self._apply(fault, +1)
        if end < self.world.duration:
            yield Timeout(env, end - fault.at)
            self._apply(fault, -1)

    def _apply(self, fault: Any, sign: int) -> None:
        world = self.world
        if isinstance(fault, Partition):
            a, b = fault.between
            for caller, callee in ((a, b), (b, a)):
                for edge in world.services[caller].edges:
                    if edge.upstream.name == callee:
                        edge.partitioned = sign > 0
            return
        if isinstance(fault, DiscoveryOutage):
            self.discovery.outage(fault.service, sign)
            return
        if isinstance(fault, DiscoveryStale):
            self.discovery.add_stale(fault.service, sign * fault.add)
            return
        if isinstance(fault, StoreOutage):
            world.store_outages += sign
            return
        target = world.services[fault.service]
        ids = fault.pick([i.endpoint.id for i in target.instances])
        for instance_id in ids:
            instance = target.by_id[instance_id]
            faults = self.active.setdefault(id(instance), [])
            if sign > 0:
                faults.append(fault)
            else:
                faults.remove(fault)
            self._recompute(instance, faults)

    def _recompute(self, instance: Instance, faults: list[InstanceFaults]) -> None:
        was_up = instance.up
        instance.up = not any(isinstance(f, Crash) for f in faults)
        instance.hang_rate = max(
            [instance.service.behaviour.hangs, *(f.rate for f in faults if isinstance(f, Hang))]
        )
        instance.hung = instance.hang_rate > 0.0
        errors = [f for f in faults if isinstance(f, Errors)]
        instance.error_rate = max(
            [instance.service.behaviour.errors, *(f.rate for f in errors)], default=0.0
        )
        instance.error_status = errors[-1].status if errors else 500
        instance.added_latency = sum(f.add for f in faults if isinstance(f, AddedLatency))
        instance.capacity = math.prod(f.to for f in faults if isinstance(f, Capacity))
        old_limit = instance.limit
        instance.limit = (
            instance.base_limit
            if instance.base_limit == math.inf
            else max(1.0, math.floor(instance.base_limit * instance.capacity))
        )
        starts = self.crash_starts.get(id(instance))
        now = self.world.env.now
        while starts and starts[-1] <= now:
            starts.pop()
        instance.next_crash = starts[-1] if starts else math.inf
        if was_up and not instance.up:
            # A crash drops everything in flight: requests in service are reset now, queued
            # ones wake up to a reset.
            instance.epoch += 1
            instance.inflight = 0
            serving = list(instance.serving.items())
            instance.serving.clear()
            for reply, arrived in serving:
                if not reply.triggered:
                    reply.succeed(Outcome(OutcomeKind.RESET, now - arrived))
            queued = list(instance.queue)
            instance.queue.clear()
            for slot in queued:
                slot.succeed()
        elif instance.limit > old_limit:
            self.world.admit_queued(instance)

    # --- discovery -----------------------------------------------------------------------------

    def _health_check(self, service: SimService, instance: Instance) -> Process:
        health = service.model.health
        assert health is not None
        env = self.world.env
        yield Timeout(env, self.rng.uniform(0, health.interval))
        passing, streak = True, 0
        interval, timeout = health.interval, min(health.timeout, health.interval)
        while True:
            waited = 0.0
            # a check is a request too: it hangs as often as they do
            hangs = instance.up and instance.hung and self.world._hangs(instance)
            if hangs and timeout > 0:
                # no answer: the check fails once its timeout expires (unless it got one)
                yield Timeout(env, timeout)
                waited = timeout
            healthy = instance.up and not hangs
            if healthy == passing:
                streak = 0
            else:
                streak += 1
                if streak >= (health.successes if healthy else health.failures):
                    passing, streak = healthy, 0
                    listed = self.catalog[service.name]
                    if healthy:
                        listed.add(instance.endpoint.id)
                    else:
                        listed.discard(instance.endpoint.id)
                    self._publish(service.name)
            yield Timeout(env, interval - waited)

    def _publish(self, service: str) -> None:
        """The catalog changed: callers' blocking reads answer (late, see the scenario)."""
        self.discovery.changed(service)
