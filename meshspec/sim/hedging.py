"""Hedged calls in the simulator: the runtime's ``HedgedCall`` driven by SimPy's clock.

An edge whose policy has ``hedge:`` takes this driver instead of the world's plain ``_call``
(one test at its top). Each attempt is an event of its own (a server process and its timer, a
trip over the network, a refused connection or a hang), so several can be in flight; the call
waits for the first of them or for the next hedge to be due. A losing attempt is left to run:
its server does the work, as a real server does when the client gives up, and its answer is
ignored. Losers count as attempts (load); hedges are not counted as retries.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from meshspec_runtime.policy.call import Attempt, Wait
from meshspec_runtime.policy.hedge import WaitAny
from meshspec_runtime.policy.outcome import Outcome, OutcomeKind
from meshspec_runtime.policy.upstream import UpstreamPolicies
from simpy.events import AnyOf, Event, Timeout

if TYPE_CHECKING:
    from meshspec.sim.world import Edge, Instance, World

_TIMEOUT = OutcomeKind.TIMEOUT


def hedged_call(
    world: World, policies: UpstreamPolicies, edge: Edge
) -> Generator[Event, Any, bool]:
    """One hedged logical request; True when it ended with a good answer."""
    env = world.env
    counters = edge.counters
    upstream = edge.upstream
    start = env.now
    call = policies.start_hedged(start)
    replies: dict[int, Event] = {}
    while True:
        now = env.now
        step = call.next(now)
        if type(step) is Attempt:
            counters.attempts[int(now)] += 1
            instance = upstream.by_id[step.endpoint.id]
            replies[step.number] = _attempt(world, instance, edge, step.timeout)
        elif type(step) is WaitAny:
            waiting = list(replies.values())
            if step.delay != math.inf:
                waiting.append(Timeout(env, step.delay))
            yield AnyOf(env, waiting)
            for number in sorted(replies):  # one at a time: the call may end at any of them
                reply = replies[number]
                if call.finished or not reply.triggered:
                    continue
                del replies[number]
                answer: Outcome | float = reply.value  # type: ignore[assignment]  # set: triggered
                if isinstance(answer, float):  # a plain success: its latency
                    answer = Outcome(OutcomeKind.ANSWER, answer)
                elif answer.kind is _TIMEOUT:
                    counters.timeouts[int(env.now)] += 1
                call.record(env.now, number, answer)
        elif type(step) is Wait:
            yield Timeout(env, step.delay)
        else:
            hedges = call.hedges
            ok = world._finish(call, step, counters, start, policies.failure_on)
            if hedges:  # _finish counts every attempt after the first as a retry
                counters.retries[int(env.now)] -= hedges
            return ok


def _attempt(world: World, instance: Instance, edge: Edge, timeout: float) -> Event:
    """An event that triggers with the attempt's result: a float (a plain success's
    latency) or an ``Outcome``."""
    env = world.env
    if edge.network is not None:
        return env.process(world._over_network(instance, edge, timeout))
    if not instance.up:
        refused = Event(env)
        refused.succeed(Outcome(OutcomeKind.CONNECT_FAILURE))
        return refused
    if (instance.hung and world._hangs(instance)) or edge.partitioned:
        return Timeout(env, timeout, Outcome(_TIMEOUT, timeout))
    reply = Event(env)  # the server answers with the time since it arrived, i.e. now
    env.process(world._serve(instance, reply))
    Timeout(env, timeout, reply).callbacks.append(_expire)
    return reply


def _expire(timeout: Event) -> None:
    """The attempt's timer fired: a timeout unless the server answered (as the world's)."""
    reply: Event = timeout.value  # type: ignore[assignment]
    if not reply.triggered:
        reply.succeed(Outcome(_TIMEOUT, timeout._delay))  # type: ignore[attr-defined]
