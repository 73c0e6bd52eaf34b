"""The SimPy world: instances that serve, callers that drive the runtime's call machine.

Every caller -- each instance of each service, for each of its upstreams, and each traffic
source -- owns a ``meshspec_runtime`` :class:`UpstreamPolicies` and runs the runtime's
:class:`Call` state machine against SimPy's clock. The world decides only what the network and
the servers do (answer, refuse, hang, queue, take time); every decision a caller makes
(endpoint, admission, retry, backoff, deadline) comes from the runtime.
"""

from __future__ import annotations

import gc
import math
import random
from collections import deque
from collections.abc import Callable, Generator
from typing import Any

import simpy
from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.policy.call import REFUSALS, Attempt, Call, Done, Wait
from meshspec_runtime.policy.config import (
    BudgetScope,
    LoadBalancerConfig,
    RetryConfig,
    Strategy,
    UpstreamPolicy,
)
from meshspec_runtime.policy.hedge import HedgedCall
from meshspec_runtime.policy.outcome import ConditionSet, Outcome, OutcomeKind
from meshspec_runtime.policy.upstream import UpstreamPolicies
from meshspec_runtime.shared.budget import shared_budget_for
from meshspec_runtime.shared.exchange import BudgetExchange, Sleep
from meshspec_runtime.shared.protocol import MemoryStore
from simpy.events import PENDING, Event, Timeout

from meshspec.gcpause import collector_paused
from meshspec.sim.behaviour import DEFAULT_KEY, ServiceBehaviour, resolve_behaviour
from meshspec.sim.caps import DRAIN_CAP
from meshspec.sim.distributions import Sampler, sampler
from meshspec.sim.disturbance import disturbances
from meshspec.sim.faults import FaultSchedule
from meshspec.sim.hedging import hedged_call
from meshspec.sim.mesh import MeshModel, ServiceModel
from meshspec.sim.metrics import ENTRY, EdgeCounters, Recorder, ServiceCounters
from meshspec.sim.scenario import DiscoveryOutage, DiscoveryStale, Scenario, Traffic

Process = Generator[Event, Any, Any]
# The clock is read as ``env._now``: SimPy's ``now`` is a property, a function call per read,
# and the hot path reads it several times per attempt.

REFUSED = Outcome(OutcomeKind.CONNECT_FAILURE)
_SUCCESS = OutcomeKind.ANSWER
_TIMEOUT = OutcomeKind.TIMEOUT
INSTANT_RETRY_PAUSE = 0.001
"""A closed-loop client without think time whose call took no time waits this long (1 ms)."""
MAX_DRAIN = DRAIN_CAP
"""Longest drain after the traffic stops, unless the run itself is longer (seconds)."""
MAX_TIMER_LENGTHS = 256
"""Distinct attempt timeouts that get a shared timer; rarer lengths use their own."""


def _expire(timeout: Event) -> None:
    """An attempt's timer fired: answer the caller with a timeout unless the server did."""
    reply: Event = timeout.value  # type: ignore[assignment]
    if not reply.triggered:
        reply.succeed(Outcome(OutcomeKind.TIMEOUT, timeout._delay))  # type: ignore[attr-defined]


class Task:
    """Runs a generator of SimPy events as a SimPy process does, minus what a request never
    uses: it starts at once (no ``Initialize`` event), nobody waits for its end (no event when
    it returns), and it is never interrupted: two heap entries fewer per request and per hop.

    Events hold the bound ``resume``, not the other way round: a finished task is freed at
    once, with no reference cycle for the garbage collector to find.
    """

    __slots__ = ("generator",)

    def __init__(self, generator: Process) -> None:
        self.generator = generator
        try:
            event = next(generator)
        except StopIteration:
            return
        callbacks = event.callbacks
        if callbacks is None:  # already processed: go on with its value
            self.resume(event)
        else:
            callbacks.append(self.resume)

    def resume(self, event: Event) -> None:
        generator = self.generator
        while True:
            value = event._value
            try:
                event = generator.send(value) if event._ok else generator.throw(value)
            except StopIteration:
                return
            callbacks = event.callbacks
            if callbacks is not None:  # else: already processed, go on with its value
                callbacks.append(self.resume)
                return


def deliver(reply: Event, value: Any) -> None:
    """Answer ``reply`` and resume its waiter now, not at a later step of the same instant:
    ``reply.succeed`` without the heap entry and the loop turn."""
    reply._ok = True
    reply._value = value
    callbacks = reply.callbacks
    reply.callbacks = None  # type: ignore[assignment]  # processed, as SimPy marks it
    if callbacks:
        for callback in callbacks:
            callback(reply)


class Deadlines:
    """The timers of attempts that share one timeout length, kept in arrival order.

    Their deadlines come in the order they were set, so one SimPy timer (armed for the oldest
    unanswered deadline) replaces a heap entry per attempt; answered attempts are skipped.
    """

    __slots__ = ("armed", "env", "length", "pending", "timeout")

    def __init__(self, env: simpy.Environment, length: float) -> None:
        self.env = env
        self.length = length
        self.pending: deque[tuple[float, Event]] = deque()
        self.armed = False
        self.timeout = Outcome(OutcomeKind.TIMEOUT, length)

    def add(self, reply: Event) -> None:
        pending = self.pending
        # Drop the answered attempts at the head now, not when the timer next fires: with a
        # long timeout (an outside client's 30 s) tens of thousands would wait there, for the
        # collector's full passes to walk again and again. The timer stays armed as it was.
        while pending and pending[0][1]._value is not PENDING:
            pending.popleft()
        pending.append((self.env._now + self.length, reply))
        if not self.armed:
            self._arm()

    def _arm(self) -> None:
        pending = self.pending
        while pending and pending[0][1].triggered:
            pending.popleft()
        if pending:
            self.armed = True
            delay = max(0.0, pending[0][0] - self.env._now)
            Timeout(self.env, delay).callbacks.append(self._fire)
        else:
            self.armed = False

    def _fire(self, _: Event) -> None:
        horizon = self.env._now + 1e-9  # tolerate rounding in now + (deadline - now)
        pending = self.pending
        while pending and pending[0][0] <= horizon:
            reply = pending.popleft()[1]
            if not reply.triggered:
                reply.succeed(self.timeout)
        self._arm()


class Instance:
    """One instance of a service: a concurrency limit, a queue, and the faults upon it."""

    __slots__ = (
        "added_latency",
        "base_limit",
        "capacity",
        "endpoint",
        "epoch",
        "error_rate",
        "error_status",
        "hang_rate",
        "hung",
        "inflight",
        "limit",
        "next_crash",
        "policies",
        "queue",
        "service",
        "serving",
        "subscriber_numbers",
        "up",
    )

    def __init__(self, service: SimService, endpoint: Endpoint) -> None:
        self.service = service
        self.endpoint = endpoint
        self.base_limit = service.behaviour.concurrency
        self.limit = self.base_limit
        self.inflight = 0
        self.queue: deque[Event] = deque()
        self.epoch = 0
        """Bumped by a crash: requests in service from before it end with a reset."""
        self.up = True
        self.hang_rate = service.behaviour.hangs
        """Share of requests that get no answer (1.0: the whole instance hangs)."""
        self.hung = self.hang_rate > 0.0
        """Some requests hang: each attempt draws (a bool, so the common case tests one)."""
        self.error_rate = service.behaviour.errors
        self.error_status = 500
        self.added_latency = 0.0
        self.capacity = 1.0
        self.policies: list[UpstreamPolicies | None] = []
        """One per upstream edge of the service, in ``service.edges`` order; None until this
        instance first calls that upstream (see ``World.policies_of``)."""
        self.subscriber_numbers: list[int] = []
        """Per upstream edge: this instance's place among the upstream's discovery
        subscribers (it seeds the subscriber's random streams, built or not)."""
        self.serving: dict[Event, float] = {}
        """Replies of the requests in service here (served by a process) -> arrival time: a
        crash answers them with a reset at once."""
        self.next_crash = math.inf
        """When the next crash fault upon this instance starts: a leaf's attempt that could
        still be in service then takes the server process, which a crash can interrupt."""


class Edge:
    """A caller service's view of one upstream: where its calls go and what they count."""

    __slots__ = (
        "built",
        "callers",
        "counters",
        "network",
        "partitioned",
        "policy",
        "probability",
        "upstream",
    )

    def __init__(
        self,
        upstream: SimService,
        probability: float,
        counters: EdgeCounters,
        network: Sampler | None = None,
        policy: UpstreamPolicy | None = None,
    ) -> None:
        self.upstream = upstream
        self.probability = probability
        self.counters = counters
        self.partitioned = False
        self.network = network
        """Draws a one-way delay, once each way per attempt; None: no network delay."""
        self.policy = policy
        """What the callers apply to this upstream (None: an outside client's edge)."""
        self.built: list[UpstreamPolicies] = []
        """The callers' policies built so far (one per caller instance that has called)."""
        self.callers = 0
        """Caller instances of this edge, whether their policies are built or not."""


class SimService:
    __slots__ = (
        "behaviour",
        "by_id",
        "counters",
        "edges",
        "error_outcomes",
        "instances",
        "model",
        "name",
        "sample",
        "slope",
        "unavailable",
    )

    def __init__(
        self, model: ServiceModel, behaviour: ServiceBehaviour, counters: ServiceCounters
    ) -> None:
        self.name = model.name
        self.model = model
        self.behaviour = behaviour
        self.counters = counters
        self.edges: list[Edge] = []
        self.instances = [Instance(self, e) for e in model.endpoints]
        self.by_id = {i.endpoint.id: i for i in self.instances}
        self.sample: Callable[[], float] = lambda: 0.0
        self.slope = behaviour.latency.slope
        """Added service time per request in service (load-dependent latency)."""
        grpc = model.protocol == "grpc"
        self.unavailable = Outcome(OutcomeKind.ANSWER, 0.0, 503, "UNAVAILABLE" if grpc else None)
        self.error_outcomes = _GRPC_ERRORS if grpc else _HTTP_ERRORS


def _grpc_status(status: int) -> str:
    return {429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}.get(
        status, "INTERNAL"
    )


# An error status -> (status, gRPC status): one table per protocol, shared by every service.
_HTTP_ERRORS: dict[int, tuple[int, str | None]] = {s: (s, None) for s in range(400, 600)}
_GRPC_ERRORS: dict[int, tuple[int, str | None]] = {s: (s, _grpc_status(s)) for s in range(400, 600)}


def entry_policy(traffic: Traffic) -> UpstreamPolicy:
    """The outside client: one attempt, round robin over what discovery lists, its patience."""
    return UpstreamPolicy(
        timeout=traffic.timeout,
        retry=RetryConfig(attempts=1),
        load_balancer=LoadBalancerConfig(strategy=Strategy.ROUND_ROBIN),
    )


class World:
    """One run of one scenario against one mesh with one seed."""

    def __init__(
        self,
        mesh: MeshModel,
        scenario: Scenario,
        seed: int,
        *,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        self.mesh = mesh
        self.scenario = scenario
        self.seed = seed
        self.env = simpy.Environment()
        self.duration = scenario.duration
        seconds = max(1, math.ceil(scenario.duration))
        # After the traffic stops, requests in flight may finish: every one an outside client
        # started is counted, so ratios (amplification, load) are not skewed by the cut-off.
        # The drain is capped: a client timeout of hours would otherwise size every counter
        # array and keep the clock (health checks, progress) ticking for hours of sim time.
        self.drain = min(max(t.timeout for t in scenario.traffic), max(self.duration, MAX_DRAIN))
        slots = seconds + math.ceil(self.drain) + 1
        self.recorder = Recorder(
            duration=scenario.duration, seconds=seconds, slots=slots, warmup=int(scenario.warmup)
        )
        # Faults, spikes and ramps: shaded in plots, recovery is measured from each.
        self.recorder.faults.extend(disturbances(scenario))
        self._progress = progress
        # Separate random streams, so changing a policy does not change the arrivals or the
        # service times a comparison run sees.
        self.traffic_rng = random.Random(f"{seed}/traffic")
        self.behaviour_rng = random.Random(f"{seed}/behaviour")
        self.network_rng = random.Random(f"{seed}/network")
        self.services: dict[str, SimService] = {}
        self.subscribers: dict[str, list[UpstreamPolicies | None]] = {}
        """Upstream service -> every caller's policies for it (discovery updates them); None
        for a caller instance that has not called it yet."""
        self.dormant: dict[str, list[tuple[Instance, int]]] = {}
        """Upstream service -> (caller instance, edge index) whose policies are not built yet,
        in subscriber order."""
        self.lazy = not any(
            isinstance(fault, DiscoveryOutage | DiscoveryStale) for fault in scenario.faults
        )
        """Build a caller instance's policies (and its discovery subscriber) only when it first
        calls: memory and time follow the traffic, not services x instances x edges. A caller
        that has not called has nothing to observe, until its upstream's catalog changes (then
        every dormant caller of it is built, from the view it would have had). Discovery
        outages and extra lag act upon the caches' history, so with those every caller is
        built at the start."""
        self.caller_edges: list[Edge] = []
        """Every service-to-service edge (the breakers and detectors they hold)."""
        self.deadlines: dict[float, Deadlines] = {}
        """Attempt timers by timeout length (a bounded number of lengths)."""
        self.budget_store = MemoryStore()
        """The store of the retry budgets of scope service: the runtime's rule, in memory."""
        self.store_outages = 0
        """Budget-store outages in force (see ``faults``)."""
        self.exchanges: list[BudgetExchange] = []
        self.running = False
        """The run has started: a caller built from now on subscribes to discovery at once."""
        with collector_paused(freeze=True):  # tens of thousands of long-lived objects
            self._build()
        self.faults = FaultSchedule(self)

    # --- construction ------------------------------------------------------------------------

    def _build(self) -> None:
        section = self.scenario.behaviour
        for model in self.mesh.services.values():
            behaviour = resolve_behaviour(section, model.name, list(model.upstreams))
            service = SimService(model, behaviour, self.recorder.service(model.name))
            service.sample = behaviour.sampler(self.behaviour_rng)
            self.services[model.name] = service
        for service in self.services.values():
            for index, (upstream_name, policy) in enumerate(service.model.upstreams.items()):
                upstream = self.services[upstream_name]
                counters = self.recorder.edge(service.name, upstream_name)
                edge = Edge(
                    upstream,
                    service.behaviour.calls[upstream_name],
                    counters,
                    self._network(f"{service.name}->{upstream_name}", default=True),
                    policy,
                )
                edge.callers = len(service.instances)
                if policy.circuit_breaker is not None:
                    counters.breakers += edge.callers
                service.edges.append(edge)
                self.caller_edges.append(edge)
                subscribers = self.subscribers.setdefault(upstream_name, [])
                dormant = self.dormant.setdefault(upstream_name, [])
                for inst in service.instances:
                    inst.subscriber_numbers.append(len(subscribers))
                    subscribers.append(None)
                    inst.policies.append(None)
                    dormant.append((inst, index))
                budget = policy.retry.budget
                if not self.lazy or (budget is not None and budget.scope is BudgetScope.SERVICE):
                    # a shared budget's exchange runs from the start, whether its caller calls
                    for inst in service.instances:
                        self._materialize(inst, index)

    def _network(self, edge: str, *, default: bool) -> Sampler | None:
        network = self.scenario.network
        latency = network.get(edge) or (network.get(DEFAULT_KEY) if default else None)
        return None if latency is None else sampler(latency, self.network_rng)

    def policies_of(self, instance: Instance, index: int) -> UpstreamPolicies:
        """``instance``'s policies for its ``index``-th upstream, built on its first call."""
        policies = instance.policies[index]
        return policies if policies is not None else self._materialize(instance, index)

    def build_dormant_callers(self, upstream: str) -> None:
        """Build every caller's policies for ``upstream`` not built yet (its catalog changes:
        from now on, what each caller's cache saw differs)."""
        for instance, index in self.dormant.pop(upstream, ()):
            if instance.policies[index] is None:
                self._materialize(instance, index)

    def _materialize(self, instance: Instance, index: int) -> UpstreamPolicies:
        service = instance.service
        edge = service.edges[index]
        upstream = edge.upstream
        policy = edge.policy
        assert policy is not None
        policies = self._policies(
            policy, upstream, edge.counters, f"{instance.endpoint.id}/{upstream.name}"
        )
        budget = policy.retry.budget
        if budget is not None and budget.scope is BudgetScope.SERVICE:
            self._attach_store(policies, service.name, upstream.name, instance)
        instance.policies[index] = policies
        edge.built.append(policies)
        number = instance.subscriber_numbers[index]
        self.subscribers[upstream.name][number] = policies
        if self.running:
            self.faults.discovery.subscribe(upstream.name, number, policies)
        return policies

    def _policies(
        self, policy: UpstreamPolicy, upstream: SimService, counters: EdgeCounters, key: str
    ) -> UpstreamPolicies:
        def on_transition(old: Any, new: Any, now: float) -> None:
            if new == "open":
                counters.trips += 1
            counters.event(now, f"breaker of {key.partition('/')[0]} {old} -> {new}")

        policies = UpstreamPolicies(
            policy,
            upstream.model.endpoints,
            rng=random.Random(f"{self.seed}/policy/{key}"),
            breaker_listeners=(on_transition,),
        )
        return policies

    def _attach_store(
        self,
        policies: UpstreamPolicies,
        caller: str,
        upstream: str,
        instance: Instance,
    ) -> None:
        """Give ``policies`` the runtime's shared budget, exchanged with ``budget_store``."""
        config = policies.policy.retry.budget
        assert config is not None
        member = f"{instance.endpoint.id}/{upstream}"
        budget = shared_budget_for(config, random.Random(f"{self.seed}/budget/{member}"))
        exchange = BudgetExchange(
            budget,
            key=f"{self.mesh.name}/{caller}/{upstream}",
            member=member,
            rng=random.Random(f"{self.seed}/exchange/{member}"),
            period=self.scenario.budget_store.period,
            backoff_max=max(2.0, self.scenario.budget_store.period),
        )
        policies.budget = budget
        self.exchanges.append(exchange)

    # --- running -----------------------------------------------------------------------------

    def run(self) -> Recorder:
        env = self.env
        for index, traffic in enumerate(self.scenario.traffic):
            self._start_traffic(index, traffic)
        self.faults.start()
        self.running = True
        for exchange in self.exchanges:
            env.process(self._exchange(exchange))
        env.process(self._sample_policies())
        if self._progress is not None:
            env.process(self._report_progress(self._progress))
        # The world, the mesh and the loaded spec live as long as the run: frozen, the
        # collector's full passes do not walk them again and again as the requests come and go.
        gc.freeze()
        try:
            env.run(until=self.duration + self.drain)
        finally:
            gc.unfreeze()
        for edge in self.caller_edges:
            # the detectors' own count: ejections shorter than the 1 s sampling step count too
            edge.counters.ejections = sum(
                p.outlier.ejections_total for p in edge.built if p.outlier
            )
        return self.recorder

    def _start_traffic(self, index: int, traffic: Traffic) -> None:
        service = self.services[traffic.to]
        counters = self.recorder.edge(ENTRY, service.name)
        policies = UpstreamPolicies(
            entry_policy(traffic),
            service.model.endpoints,
            rng=random.Random(f"{self.seed}/entry/{index}"),
        )
        self.subscribers.setdefault(service.name, []).append(policies)
        edge = Edge(
            service, 1.0, counters, self._network(f"{ENTRY}->{service.name}", default=False)
        )
        if traffic.clients is not None:
            for _ in range(traffic.clients):
                self.env.process(self._closed_loop(traffic, policies, edge))
        else:
            self.env.process(self._open_loop(traffic, policies, edge))

    def _open_loop(self, traffic: Traffic, policies: UpstreamPolicies, edge: Edge) -> Process:
        env, rng = self.env, self.traffic_rng
        stop = min(self.duration, traffic.stop if traffic.stop is not None else math.inf)
        peak = traffic.peak_rate()
        if peak <= 0:
            return
        varying = bool(traffic.ramps or traffic.spikes)
        constant = traffic.arrival == "constant"
        call = self._call
        yield Timeout(env, traffic.start)
        while True:
            if constant:
                rate = traffic.rate_at(env._now) if varying else peak
                delay = 1.0 / rate if rate > 0 else 0.01
            else:
                delay = rng.expovariate(peak)
            if env._now + delay >= stop:
                return
            yield Timeout(env, delay)
            if constant:
                if varying and traffic.rate_at(env._now) <= 0:
                    continue
            elif varying and rng.random() * peak >= traffic.rate_at(env._now):
                continue  # thinning: a Poisson process whose rate changes over time
            Task(call(policies, edge))

    def _closed_loop(self, traffic: Traffic, policies: UpstreamPolicies, edge: Edge) -> Process:
        env = self.env
        stop = min(self.duration, traffic.stop if traffic.stop is not None else math.inf)
        yield Timeout(env, traffic.start)
        while env._now < stop:
            sent = env._now
            yield from self._call(policies, edge)
            if traffic.think > 0:
                yield Timeout(env, traffic.think)
            elif env._now == sent:
                # an answer in no time (a refused connection, an open breaker, no endpoint):
                # without a pause the client would loop forever at one instant of the clock
                yield Timeout(env, INSTANT_RETRY_PAUSE)

    # --- the hot path --------------------------------------------------------------------------

    def _call(self, policies: UpstreamPolicies, edge: Edge) -> Generator[Event, Any, bool]:
        """One logical request: the runtime's call machine, driven by SimPy's clock."""
        if policies.hedge is not None:  # a hedged edge has its own driver
            return (yield from hedged_call(self, policies, edge))
        env = self.env
        counters = edge.counters
        upstream = edge.upstream
        leaf = not upstream.edges
        deadlines = self.deadlines
        start = env._now
        call: Call = policies.start(start)
        while True:
            now = env._now
            step = call.next(now)
            kind = type(step)
            if kind is Attempt:
                counters.attempts[int(now)] += 1
                instance = upstream.by_id[step.endpoint.id]  # type: ignore[union-attr]
                timeout: float = step.timeout  # type: ignore[union-attr]
                if edge.network is not None:
                    travelled = yield from self._over_network(instance, edge, timeout)
                    if not isinstance(travelled, float):
                        if travelled.kind is _TIMEOUT:
                            counters.timeouts[int(env._now)] += 1
                        call.record(env._now, travelled)
                    elif call.record_success(env._now, travelled):
                        return self._succeeded(call, counters, start)
                elif not instance.up:
                    call.record(now, REFUSED)
                elif (instance.hung and self._hangs(instance)) or edge.partitioned:
                    yield Timeout(env, timeout)
                    counters.timeouts[int(env._now)] += 1
                    call.record(env._now, Outcome(OutcomeKind.TIMEOUT, timeout))
                elif (
                    leaf
                    and instance.inflight < instance.limit
                    and now + timeout < instance.next_crash
                ):
                    # A leaf with a free slot answers after exactly its work time, known now:
                    # wait for the sooner of that and the timeout without a server process.
                    upstream.counters.received[int(now)] += 1
                    instance.inflight += 1
                    work = self._work(instance)
                    if work < timeout:
                        epoch = instance.epoch
                        yield Timeout(env, work)
                        if instance.epoch != epoch:
                            call.record(env._now, Outcome(OutcomeKind.RESET, work))
                            continue
                        now = env._now
                        queue = instance.queue
                        if queue and instance.inflight <= instance.limit:
                            queue.popleft().succeed()  # _release, inlined
                        else:
                            instance.inflight -= 1
                        if instance.error_rate:
                            answer = self._answer(instance, True, work)
                            if answer is not None:
                                call.record(now, answer)
                                continue
                        else:  # _answer's plain success, inlined
                            upstream.counters.served[int(now)] += 1
                        if call.record_success(now, work):
                            return self._succeeded(call, counters, start)
                    else:
                        Timeout(env, work, (instance, instance.epoch)).callbacks.append(
                            self._finish_abandoned
                        )
                        yield Timeout(env, timeout)
                        counters.timeouts[int(env._now)] += 1
                        call.record(env._now, Outcome(OutcomeKind.TIMEOUT, timeout))
                else:
                    reply = Event(env)
                    Task(self._serve(instance, reply))
                    timers = deadlines.get(timeout)
                    if timers is not None:
                        timers.add(reply)
                    elif len(deadlines) < MAX_TIMER_LENGTHS:
                        timers = deadlines[timeout] = Deadlines(env, timeout)
                        timers.add(reply)
                    else:
                        Timeout(env, timeout, reply).callbacks.append(_expire)
                    answer = yield reply
                    if answer.__class__ is not float:
                        if answer.kind is _TIMEOUT:
                            counters.timeouts[int(env._now)] += 1
                        call.record(env._now, answer)
                    elif call.record_success(env._now, answer):
                        return self._succeeded(call, counters, start)
            elif kind is Wait:
                yield Timeout(env, step.delay)  # type: ignore[union-attr]
            else:
                return self._finish(call, step, counters, start, policies.failure_on)

    def _hangs(self, instance: Instance) -> bool:
        """Whether this request to a (partly) hanging instance gets no answer."""
        rate = instance.hang_rate
        return rate >= 1.0 or self.behaviour_rng.random() < rate

    def _over_network(
        self, instance: Instance, edge: Edge, timeout: float
    ) -> Generator[Event, Any, Outcome | float]:
        """One attempt across a network with delay: the request travels, is served (or
        refused, or lost), and the answer travels back; the caller's timer runs throughout."""
        env = self.env
        reply = Event(env)
        timers = self.deadlines.get(timeout)
        if timers is None and len(self.deadlines) < MAX_TIMER_LENGTHS:
            timers = self.deadlines[timeout] = Deadlines(env, timeout)
        if timers is not None:
            timers.add(reply)
        else:
            Timeout(env, timeout, reply).callbacks.append(_expire)
        network = edge.network
        assert network is not None
        sent = env._now
        Task(self._travel(instance, edge, reply, network(), network()))
        answer: Outcome | float = yield reply
        # a plain success: the caller saw the round trip, not just the server's time
        return env._now - sent if isinstance(answer, float) else answer

    def _travel(
        self, instance: Instance, edge: Edge, reply: Event, there: float, back: float
    ) -> Process:
        env = self.env
        yield Timeout(env, there)
        if edge.partitioned or (instance.up and instance.hung and self._hangs(instance)):
            return  # lost: the caller's timer answers
        if not instance.up:
            answer: Outcome | float = REFUSED
        else:
            served = Event(env)
            Task(self._serve(instance, served))
            answer = yield served
        yield Timeout(env, back)
        if not reply.triggered:
            deliver(reply, answer)

    def _succeeded(self, call: Call, counters: EdgeCounters, start: float) -> bool:
        """The call machine said the last attempt's answer ended the call successfully."""
        now = self.env._now
        second = int(now)
        counters.calls[second] += 1
        counters.ok[second] += 1
        attempts = call.attempts
        counters.completed_attempts += attempts
        if attempts > 1:
            counters.retries[second] += attempts - 1
        counters.latency.append(now - start)
        counters.latency_second.append(second)
        return True

    def _finish_abandoned(self, event: Event) -> None:
        """A leaf's work, whose caller timed out, is done: free its slot (unless it crashed)."""
        instance, epoch = event.value  # type: ignore[misc]
        if instance.epoch == epoch:
            self._release(instance)

    def _finish(
        self,
        call: Call | HedgedCall,
        step: Any,
        counters: EdgeCounters,
        start: float,
        failure_on: ConditionSet,
    ) -> bool:
        now = self.env._now
        second = int(now)
        counters.calls[second] += 1
        counters.completed_attempts += call.attempts
        counters.count_end(step, second, failure_on)
        if call.attempts > 1:
            counters.retries[second] += call.attempts - 1
        if call.retries_denied:
            counters.retries_denied += 1
        if type(step) is Done:
            outcome: Outcome = step.outcome
            if outcome.kind is _SUCCESS and (outcome.status or 200) < 400:
                counters.ok[second] += 1
                counters.latency.append(now - start)
                counters.latency_second.append(second)
                return True
            counters.failures[str(outcome.status or outcome.kind)] += 1
            return False
        counters.failures[str(step.reason)] += 1
        if step.reason in REFUSALS:
            counters.refusals[second] += 1
        return False

    def _work(self, instance: Instance) -> float:
        """Service time of a request starting now at ``instance`` (load and faults included)."""
        service = instance.service
        work = service.sample() + instance.added_latency
        slope = service.slope
        if slope:
            work += slope * instance.inflight
        if instance.capacity < 1.0 and instance.limit == math.inf:
            work /= instance.capacity
        return work

    def _answer(self, instance: Instance, ok: bool, latency: float) -> Outcome | None:
        """The instance's answer once its work (and its own calls) are done: None for a plain
        success (the driver then uses the call machine's ``record_success``)."""
        service = instance.service
        if ok and instance.error_rate and self.behaviour_rng.random() < instance.error_rate:
            status, grpc = service.error_outcomes[instance.error_status]
            return Outcome(OutcomeKind.ANSWER, latency, status, grpc)
        if ok:
            service.counters.served[int(self.env._now)] += 1
            return None
        status, grpc = service.error_outcomes[503]
        return Outcome(OutcomeKind.ANSWER, latency, status, grpc)

    def _serve(self, instance: Instance, reply: Event) -> Process:
        """One attempt at one instance: queue, work, call the upstreams, answer."""
        env = self.env
        service = instance.service
        arrived = env._now
        counters = service.counters
        counters.received[int(arrived)] += 1
        epoch = instance.epoch
        if instance.inflight >= instance.limit:
            if len(instance.queue) >= service.behaviour.queue:
                counters.rejected[int(arrived)] += 1
                reply.succeed(service.unavailable)
                return
            slot = Event(env)
            instance.queue.append(slot)
            yield slot
            if instance.epoch != epoch:
                return self._reset(reply, arrived)
            if service.behaviour.abandon and reply.triggered:
                self._release(instance)
                return
        else:
            instance.inflight += 1
        serving = instance.serving
        serving[reply] = arrived
        yield Timeout(env, self._work(instance))
        ok = True
        rng = self.behaviour_rng
        for index, edge in enumerate(service.edges):
            if edge.probability < 1.0 and rng.random() >= edge.probability:
                continue
            policies = instance.policies[index]
            if policies is None:
                policies = self._materialize(instance, index)
            if not (yield from self._call(policies, edge)):
                ok = False
                break
        if instance.epoch != epoch:
            return self._reset(reply, arrived)  # already answered by the crash
        del serving[reply]
        queue = instance.queue
        if queue and instance.inflight <= instance.limit:
            queue.popleft().succeed()  # _release, inlined
        else:
            instance.inflight -= 1
        if reply._value is PENDING:  # not answered yet (by its timer)
            now = env._now
            latency = now - arrived
            if ok and not instance.error_rate:  # _answer's plain success, inlined
                counters.served[int(now)] += 1
                deliver(reply, latency)  # a plain success: the latency alone
            else:
                answer = self._answer(instance, ok, latency)
                deliver(reply, latency if answer is None else answer)

    def _reset(self, reply: Event, arrived: float) -> None:
        if not reply.triggered:
            reply.succeed(Outcome(OutcomeKind.RESET, self.env._now - arrived))

    @staticmethod
    def _release(instance: Instance) -> None:
        """Hand the slot to the next queued request, or free it."""
        queue = instance.queue
        if queue and instance.inflight <= instance.limit:
            queue.popleft().succeed()
        else:
            instance.inflight -= 1

    def admit_queued(self, instance: Instance) -> None:
        """After the limit grew: start queued requests into the new slots."""
        while instance.queue and instance.inflight < instance.limit:
            instance.inflight += 1
            instance.queue.popleft().succeed()

    # --- the shared budgets' store ----------------------------------------------------------------

    def _exchange(self, exchange: BudgetExchange) -> Process:
        """The runtime's exchange loop (``RedisStore``'s thread), against the simulated store."""
        env, store = self.env, self.budget_store
        settings = self.scenario.budget_store
        half = settings.latency / 2
        end = self.duration + self.drain
        while True:
            step = exchange.next(env._now)
            if isinstance(step, Sleep):
                if step.until >= end:
                    return
                yield Timeout(env, step.until - env._now)
                continue
            if self.store_outages:
                yield Timeout(env, settings.timeout)
                exchange.receive(env._now, None)
                continue
            yield Timeout(env, half)
            reply = None if self.store_outages else store.exchange(step.request, env._now)
            yield Timeout(env, half)
            exchange.receive(env._now, reply)

    # --- sampling ------------------------------------------------------------------------------

    def _sample_policies(self) -> Process:
        """Once a second: the share of breakers open and of endpoints ejected, per edge (the
        ejection count is the detectors' own, taken at the end of the run)."""
        env = self.env
        seconds = self.recorder.seconds
        while True:
            now = env._now
            second = int(now)
            if second >= seconds:
                return
            for edge in self.caller_edges:
                counters = edge.counters
                opened = half = 0
                ejected = 0
                for policies in edge.built:  # a caller not built yet: closed, none ejected
                    breaker = policies.breaker
                    if breaker is not None:
                        state = breaker.state(now)
                        opened += state == "open"
                        half += state == "half_open"
                    outlier = policies.outlier
                    if outlier is not None:
                        ejected += len(outlier.ejected(now))
                if counters.breakers:
                    counters.breaker_open[second] = opened / counters.breakers
                    counters.breaker_half_open[second] = half / counters.breakers
                counters.ejected[second] = ejected / edge.callers
            yield Timeout(env, 1.0)

    def _report_progress(self, progress: Callable[[float], None]) -> Process:
        while True:
            progress(min(self.env._now, self.duration))
            yield Timeout(self.env, 1.0)
