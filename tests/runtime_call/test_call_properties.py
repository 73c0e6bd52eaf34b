"""Properties of the call machine and the balancers, checked by hypothesis."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st
from meshspec_runtime.policy.balancer import balancer_for
from meshspec_runtime.policy.call import Attempt, Done, Fail, Step, Wait
from meshspec_runtime.policy.config import (
    BackoffConfig,
    CircuitBreakerConfig,
    Jitter,
    LoadBalancerConfig,
    OutlierDetectionConfig,
    RetryBudgetConfig,
    RetryConfig,
    Strategy,
    UpstreamPolicy,
)
from meshspec_runtime.policy.outcome import Outcome
from meshspec_runtime.policy.upstream import UpstreamPolicies
from runtime_call_kit import ERROR, OK, REFUSED, TIMED_OUT, endpoints, status

KINDS = [OK, REFUSED, TIMED_OUT, ERROR, status(503), status(500), status(404), status(200)]


@st.composite
def policies(draw: st.DrawFn) -> UpstreamPolicy:
    timeout = draw(st.floats(0.05, 5.0))
    per_try = draw(st.none() | st.floats(0.01, 1.0).map(lambda f: f * timeout))
    base = draw(st.floats(0.001, 0.5))
    backoff = BackoffConfig(
        base=base,
        max=base * draw(st.floats(1.0, 20.0)),
        jitter=draw(st.sampled_from(list(Jitter))),
    )
    budget = draw(
        st.none()
        | st.builds(
            RetryBudgetConfig,
            ratio=st.floats(0.0, 1.0),
            min_per_second=st.floats(0.0, 5.0),
            window=st.floats(1.0, 30.0),
        )
    )
    retry = RetryConfig(
        attempts=draw(st.integers(1, 6)), per_try_timeout=per_try, backoff=backoff, budget=budget
    )
    breaker = draw(
        st.none()
        | st.just(CircuitBreakerConfig(minimum_calls=5, window={"kind": "count", "size": 10}))
    )
    strategy = draw(st.sampled_from(list(Strategy)))
    balancer = LoadBalancerConfig(strategy=strategy, ring_size=64, maglev_table_size=101)
    return UpstreamPolicy(
        timeout=timeout,
        retry=retry,
        circuit_breaker=breaker,
        load_balancer=balancer,
        concurrency_limit=draw(st.none() | st.integers(1, 3)),
    )


outcome_lists = st.lists(
    st.tuples(st.sampled_from(KINDS), st.floats(0.0, 2.0)), min_size=6, max_size=6
)


def run_calls(
    policy: UpstreamPolicy, seed: int, scripts: list[list[tuple[Outcome, float]]]
) -> list[list[tuple[float, Step]]]:
    """Run one call per script, one after the other, with a fake clock."""
    up = UpstreamPolicies(policy, endpoints(4), rng=random.Random(seed))
    now = 0.0
    history = []
    for number, script in enumerate(scripts):
        call = up.start(now, key=f"k{number % 3}")
        feed = iter(script)
        steps: list[tuple[float, Step]] = []
        while True:
            step = call.next(now)
            steps.append((now, step))
            if isinstance(step, Attempt):
                outcome, latency = next(feed)
                now += min(latency, step.timeout)
                call.record(now, outcome)
            elif isinstance(step, Wait):
                now += step.delay
            else:
                break
        history.append(steps)
        now += 0.5
    assert up.bulkhead is None or up.bulkhead.in_use == 0
    assert all(h.active == 0 for h in up.balancer.hosts)
    return history


@given(policies(), st.integers(0, 2**32), st.lists(outcome_lists, min_size=1, max_size=5))
def test_attempts_and_deadline_are_never_exceeded(
    policy: UpstreamPolicy, seed: int, scripts: list[list[tuple[Outcome, float]]]
) -> None:
    for steps in run_calls(policy, seed, scripts):
        started = steps[0][0]
        deadline = started + policy.timeout
        attempts = [(at, s) for at, s in steps if isinstance(s, Attempt)]
        assert len(attempts) <= policy.retry.attempts
        assert [s.number for _, s in attempts] == list(range(1, len(attempts) + 1))
        for at, attempt in attempts:
            assert at < deadline
            assert 0 < attempt.timeout <= deadline - at + 1e-9
            if policy.retry.per_try_timeout is not None:
                assert attempt.timeout <= policy.retry.per_try_timeout
        for at, step in steps:
            if isinstance(step, Wait):
                assert at + step.delay < deadline
        assert isinstance(steps[-1][1], Done | Fail)


@given(policies(), st.integers(0, 2**32), st.lists(outcome_lists, min_size=1, max_size=4))
def test_identical_seeds_give_identical_decisions(
    policy: UpstreamPolicy, seed: int, scripts: list[list[tuple[Outcome, float]]]
) -> None:
    assert run_calls(policy, seed, scripts) == run_calls(policy, seed, scripts)


@given(
    st.sampled_from(list(Strategy)),
    st.lists(st.integers(1, 5), min_size=2, max_size=8),
    st.data(),
)
def test_an_unavailable_endpoint_is_never_picked_while_another_is_available(
    strategy: Strategy, weights: list[int], data: st.DataObject
) -> None:
    config = LoadBalancerConfig(
        strategy=strategy, panic_threshold=0.0, ring_size=64, maglev_table_size=101
    )
    eps = endpoints(len(weights), weights)
    ids = [e.id for e in eps]
    out = data.draw(st.sets(st.sampled_from(ids), max_size=len(ids) - 1))
    balancer = balancer_for(config, eps, random.Random(data.draw(st.integers(0, 1000))))
    balancer.set_unavailable(frozenset(out))
    for i in range(40):
        avoid = balancer.pick(float(i), f"k{i}")
        assert avoid is not None and avoid.id not in out
        host = balancer.pick(float(i), f"k{i}", avoid=avoid)
        assert host is not None and host.id not in out
        if len(ids) - len(out) > 1:
            assert host is not avoid


@given(st.sampled_from(list(Strategy)), st.integers(2, 6), st.data())
def test_unhealthy_endpoints_are_skipped_by_calls(
    strategy: Strategy, n: int, data: st.DataObject
) -> None:
    balancer = LoadBalancerConfig(
        strategy=strategy, panic_threshold=0.0, ring_size=64, maglev_table_size=101
    )
    up = UpstreamPolicies(
        UpstreamPolicy(load_balancer=balancer), endpoints(n), rng=random.Random(n)
    )
    down = data.draw(st.sets(st.sampled_from([f"ep-{i}" for i in range(n)]), max_size=n - 1))
    for endpoint_id in down:
        up.set_healthy(endpoint_id, False)
    for i in range(20):
        call = up.start(0.0, key=f"k{i}")
        step = call.next(0.0)
        assert isinstance(step, Attempt) and step.endpoint.id not in down
        call.record(0.01, OK)


@given(
    st.sampled_from(list(Strategy)),
    st.integers(2, 6),
    st.lists(st.booleans(), min_size=20, max_size=120),
    st.integers(0, 1000),
)
def test_calls_never_go_to_an_ejected_endpoint(
    strategy: Strategy, n: int, failures: list[bool], seed: int
) -> None:
    policy = UpstreamPolicy(
        retry=RetryConfig(attempts=1),
        load_balancer=LoadBalancerConfig(
            strategy=strategy, panic_threshold=0.0, ring_size=64, maglev_table_size=101
        ),
        outlier_detection=OutlierDetectionConfig(
            consecutive_failures=2, base_ejection=3.0, max_ejected=0.9
        ),
    )
    up = UpstreamPolicies(policy, endpoints(n), rng=random.Random(seed))
    assert up.outlier is not None
    for i, fails in enumerate(failures):
        now = i * 0.25
        ejected = up.outlier.ejected(now)
        call = up.start(now, key=f"k{i % 4}")
        step = call.next(now)
        assert isinstance(step, Attempt)
        assert step.endpoint.id not in ejected  # max_ejected < 1: someone is always left
        call.record(now, status(503) if fails else OK)
