"""The world: discovery lag, breakers and faults behave as the spec and runtime say."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from simrun import MESH, SCENARIO, run

from meshspec.sim.load import load_scenario
from meshspec.sim.world import World

NO_RETRY = "retry: {attempts: 3, per_try_timeout: 500ms, backoff: {base: 10ms, max: 100ms}}"


def _failing_seconds(summary: dict[str, object], edge: str) -> list[int]:
    series = summary["series"]["edges"][edge]  # type: ignore[index]
    return [s for s, rate in enumerate(series["success_rate"]) if rate is not None and rate < 1]


def test_a_crashed_instance_leaves_discovery_after_the_health_check_notices(
    write: Callable[[str, str], Path],
) -> None:
    write("mesh.yaml", MESH.replace(NO_RETRY, "retry: off"))
    path = write("scenario.yaml", SCENARIO.replace("for: 5s", "for: 12s"))
    loaded, mesh = load_scenario(path)
    health = mesh.services["back"].health
    assert health is not None
    summary = run(path)
    failing = _failing_seconds(summary, "front->back")
    # Refused until the check fails `failures` times in a row (first check within one
    # interval), then the update takes the propagation delay to reach callers.
    bound = 5 + health.interval * (health.failures + 1) + loaded.scenario.discovery.propagation
    assert failing, "callers should see the crashed instances before discovery drops them"
    assert failing[0] == 5
    assert failing[-1] <= math.ceil(bound)
    assert failing[-1] < 16


def test_without_a_health_check_callers_hit_the_crash_until_it_ends(
    write: Callable[[str, str], Path],
) -> None:
    mesh = MESH.replace(NO_RETRY, "retry: off")
    mesh = mesh.replace(
        "health_check: {http: /healthz, interval: 2s, timeout: 1s}", "health_check: off"
    )
    write("mesh.yaml", mesh)
    path = write("scenario.yaml", SCENARIO.replace("for: 5s", "for: 12s"))
    failing = _failing_seconds(run(path), "front->back")
    assert failing[0] == 5 and failing[-1] == 16
    assert len(failing) == 12


def test_retries_hide_a_crash_from_the_caller_and_cost_attempts(
    write: Callable[[str, str], Path], tiny: Path
) -> None:
    summary = run(tiny)
    front = summary["services"]["front"]
    back = summary["edges"]["front->back"]
    # Round robin sends some retries to the other crashed instance too; nearly all succeed.
    assert front["success_rate"] >= 0.995
    assert back["load_amplification"] > 1.05
    assert sum(back["failures"].values()) <= 10


def _breaker_mesh(open_for: str) -> str:
    return (
        MESH.replace(NO_RETRY, "retry: off")
        .replace(
            "circuit_breaker: off",
            "circuit_breaker: {mode: consecutive, consecutive_failures: 5, open_for: "
            + open_for
            + ", half_open_calls: 1}",
        )
        .replace("health_check: {http: /healthz, interval: 2s, timeout: 1s}", "health_check: off")
    )


def _attempts_during_outage(write: Callable[[str, str], Path], open_for: str) -> int:
    write("mesh.yaml", _breaker_mesh(open_for))
    path = write(
        "scenario.yaml",
        SCENARIO.replace("instances: 50%, ", "").replace("for: 5s", "for: 10s"),
    )
    summary = run(path)
    attempts = summary["series"]["edges"]["front->back"]["attempts"]
    return sum(attempts[5:15])


def test_the_breaker_setting_changes_the_outcome_as_the_runtime_breaker_predicts(
    write: Callable[[str, str], Path],
) -> None:
    # Every back instance refuses connections for 10 s; front's 2 instances each keep a
    # consecutive-failures breaker (5 failures trip it; then one probe per open_for).
    # The runtime's breaker predicts, per caller: 5 + 10 s / open_for probes.
    callers = 2
    short = _attempts_during_outage(write, "1s")
    long = _attempts_during_outage(write, "5s")
    assert abs(short - callers * (5 + 10)) <= callers * 2
    assert abs(long - callers * (5 + 2)) <= callers * 2
    # Without a breaker every request (100/s) tries.
    write(
        "mesh.yaml",
        MESH.replace(NO_RETRY, "retry: off").replace(
            "health_check: {http: /healthz, interval: 2s, timeout: 1s}", "health_check: off"
        ),
    )
    path = write(
        "scenario.yaml", SCENARIO.replace("instances: 50%, ", "").replace("for: 5s", "for: 10s")
    )
    plain = sum(run(path)["series"]["edges"]["front->back"]["attempts"][5:15])
    assert 900 <= plain <= 1100


def test_hang_makes_callers_time_out_and_error_rate_fails_requests(
    write: Callable[[str, str], Path],
) -> None:
    write("mesh.yaml", MESH.replace(NO_RETRY, "retry: off"))
    hang = write("hang.yaml", SCENARIO.replace("fault: crash", "fault: hang"))
    summary = run(hang)
    edge = summary["edges"]["front->back"]
    # One attempt, no answer: the call ends at its timeout.
    assert edge["success_rate"] < 1
    assert set(edge["failures"]) <= {"attempts_exhausted", "deadline_exceeded"}
    hung = summary["series"]["services"]["back"]["latency_p99"][7]
    assert hung is not None and hung < 0.5  # the successes still come from the healthy half
    errors = write(
        "errors.yaml",
        SCENARIO.replace("fault: crash", "fault: errors, rate: 100%").replace(
            "instances: 50%, ", ""
        ),
    )
    series = run(errors)["series"]["services"]["back"]["success_rate"]
    assert all(rate == 0 for rate in series[6:9])
    assert all(rate == 1 for rate in series[11:19])


def test_partition_and_added_latency(write: Callable[[str, str], Path]) -> None:
    write("mesh.yaml", MESH.replace(NO_RETRY, "retry: off"))
    partition = write(
        "p.yaml",
        SCENARIO.replace(
            "service: back, instances: 50%, fault: crash",
            "fault: partition, between: [front, back]",
        ),
    )
    series = run(partition)["series"]["services"]["back"]["success_rate"]
    # No answers across the partition: calls end at their 2 s timeout, all failed.
    during = [rate for rate in series[5:10] if rate is not None]
    assert during and all(rate == 0 for rate in during)
    assert series[3] == 1 and series[14] == 1
    slow = write("s.yaml", SCENARIO.replace("fault: crash", "fault: latency, add: 200ms"))
    p99 = run(slow)["series"]["services"]["back"]["latency_p99"]
    assert p99[7] > 0.2 > p99[2]


def test_queue_and_concurrency_limit_reject_overload(write: Callable[[str, str], Path]) -> None:
    write("mesh.yaml", MESH.replace(NO_RETRY, "retry: off"))
    path = write(
        "q.yaml",
        SCENARIO.replace(
            "default: {latency: {median: 5ms, p99: 20ms}}",
            "default: {latency: {fixed: 1ms}}\n"
            "  back: {latency: {fixed: 100ms}, concurrency: 1, queue: 0}",
        ).replace(
            "faults:\n  - {at: 5s, for: 5s, service: back, instances: 50%, fault: crash}\n", ""
        ),
    )
    summary = run(path)
    back = summary["services"]["back"]
    # 4 instances x 1 slot x 10/s = 40/s of capacity for 100/s offered. Random (Poisson)
    # arrivals at one slot without a queue serve 1/(1+a) of a = 2.5 erlangs (Erlang B):
    # 28.6/s; round robin spaces arrivals out, so between that and the capacity.
    assert back["rejected"] > 0
    assert 28 <= back["served"] <= 40


def test_abandoned_work_is_dropped_only_when_asked(write: Callable[[str, str], Path]) -> None:
    # back can serve 4 x 20/s = 80/s; 100/s arrive, so its queues grow and callers time out.
    # By default the queued work still runs after its caller left (wasted); with abandon it
    # is dropped, so the instances spend their time on requests someone still waits for.
    write("mesh.yaml", MESH.replace(NO_RETRY, "retry: off"))
    body = SCENARIO.replace(
        "default: {latency: {median: 5ms, p99: 20ms}}",
        "default: {latency: {fixed: 1ms}}\n  back: {latency: {fixed: 50ms}, concurrency: 1}",
    ).replace("faults:\n  - {at: 5s, for: 5s, service: back, instances: 50%, fault: crash}\n", "")
    kept = run(write("kept.yaml", body))["services"]["back"]
    dropped = run(
        write("dropped.yaml", body.replace("concurrency: 1}", "concurrency: 1, abandon: true}"))
    )["services"]["back"]
    assert dropped["served"] > kept["served"]
    assert dropped["success_rate"] > kept["success_rate"] + 0.04


def test_every_ejection_is_counted_even_between_samples(
    write: Callable[[str, str], Path],
) -> None:
    # Ejections of 100 ms start and end between the once-a-second samples of ejected sets;
    # the count must still match what the callers' outlier detectors did.
    mesh = MESH.replace(
        "outlier_detection: off",
        "outlier_detection: {consecutive_failures: 1, base_ejection: 100ms, max_ejection: 100ms,"
        " max_ejected: 100%}",
    ).replace("health_check: {http: /healthz, interval: 2s, timeout: 1s}", "health_check: off")
    write("mesh.yaml", mesh)
    path = write("scenario.yaml", SCENARIO)
    loaded, model = load_scenario(path)
    world = World(model, loaded.scenario, loaded.scenario.seed)
    recorder = world.run()
    detectors = [p.outlier for edge in world.caller_edges for p in edge.built if p.outlier]
    done = sum(d.ejections_total for d in detectors)
    assert done > 20
    assert recorder.edge("front", "back").ejections == done


def test_a_hung_instance_fails_its_health_check_only_when_the_check_times_out(
    write: Callable[[str, str], Path],
) -> None:
    # A crashed instance refuses the check at once; a hung one leaves the check waiting for its
    # timeout (1 s here), so it leaves discovery no sooner than that after the hang begins.
    write("mesh.yaml", MESH)
    path = write("scenario.yaml", SCENARIO.replace("instances: 50%, fault: crash", "fault: hang"))
    loaded, model = load_scenario(path)
    health = model.services["back"].health
    assert health is not None and (health.interval, health.failures) == (2, 1)  # timeout: 1s
    world = World(model, loaded.scenario, loaded.scenario.seed)
    dropped: dict[str, float] = {}
    publish = world.faults._publish

    def spy(service: str) -> None:
        for instance in world.services[service].instances:
            if instance.endpoint.id not in world.faults.catalog[service]:
                dropped.setdefault(instance.endpoint.id, world.env.now)
        publish(service)

    world.faults._publish = spy  # type: ignore[method-assign]
    world.run()
    assert len(dropped) == 4
    assert all(5 + 1 <= at < 5 + 2 + 1 for at in dropped.values()), dropped


def test_a_crash_resets_the_requests_in_service_at_once(
    write: Callable[[str, str], Path],
) -> None:
    # One client calls back directly; each request works 10 s. back crashes at 5 s: the request
    # in service must end with a reset then, not when its work would have ended (10 s).
    write("mesh.yaml", MESH)
    path = write(
        "scenario.yaml",
        SCENARIO.replace("{to: front, rate: 100/s}", "{to: back, clients: 1, think: 1s}")
        .replace("default: {latency: {median: 5ms, p99: 20ms}}", "default: {latency: {fixed: 10s}}")
        .replace("service: back, instances: 50%", "service: back"),
    )
    summary = run(path)
    requests = summary["series"]["edges"]["@traffic->back"]["requests"]
    assert requests[:5] == [0] * 5
    assert requests[5] == 1, requests
    assert summary["edges"]["@traffic->back"]["failures"]["not_retryable"] >= 1


def test_callers_are_built_on_their_first_call_and_when_their_upstream_changes(
    write: Callable[[str, str], Path],
) -> None:
    # front's instances call back only if traffic reaches them: with the traffic stopped
    # before it starts, none is built (memory follows the traffic); a crash in back changes
    # its catalog, which builds every caller of back still dormant, from the view before.
    write("mesh.yaml", MESH)
    quiet = SCENARIO.replace("{to: front, rate: 100/s}", "{to: front, rate: 100/s, start: 30s}")
    path = write("scenario.yaml", quiet.replace("faults:\n  - {at: 5s", "faults: []\n#"))
    loaded, model = load_scenario(path)
    world = World(model, loaded.scenario, loaded.scenario.seed)
    world.run()
    front = world.services["front"]
    assert [instance.policies for instance in front.instances] == [[None], [None]]
    assert world.subscribers["back"] == [None, None]

    path = write("scenario.yaml", quiet)
    loaded, model = load_scenario(path)
    world = World(model, loaded.scenario, loaded.scenario.seed)
    world.run()
    built = [instance.policies[0] for instance in world.services["front"].instances]
    assert all(policies is not None for policies in built)
    callers = list(world.faults.discovery.of("back"))
    assert [caller.policies for caller in callers] == built
    # each kept every instance until the crash (5 s), saw half of back gone, then all back
    for caller in callers:
        assert caller.published[0][0] >= 5.0
        counts = [len(endpoints) for _, endpoints in caller.published]
        assert 2 in counts and counts[-1] == 4
