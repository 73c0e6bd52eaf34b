"""The call state machine, driven by hand with a fake clock."""

from __future__ import annotations

import random

import pytest
from meshspec_runtime.policy.breaker import BreakerState
from meshspec_runtime.policy.call import (
    Attempt,
    Done,
    Fail,
    FailReason,
    Wait,
)
from meshspec_runtime.policy.call_state_error import CallStateError
from meshspec_runtime.policy.config import (
    AdaptiveThrottleConfig,
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
from meshspec_runtime.policy.outcome import Outcome, OutcomeKind
from runtime_call_kit import (
    ERROR,
    OK,
    REFUSED,
    TIMED_OUT,
    attempts_of,
    drive,
    endpoints,
    status,
    upstream,
)

NO_WAIT = BackoffConfig(base=0.01, max=0.01, jitter=Jitter.NONE)
RR = LoadBalancerConfig(strategy=Strategy.ROUND_ROBIN)


def policy(**fields: object) -> UpstreamPolicy:
    fields.setdefault("load_balancer", RR)
    return UpstreamPolicy.model_validate(fields)


def test_a_success_is_one_attempt_then_done() -> None:
    up = upstream(policy(timeout=2.0, retry=RetryConfig(per_try_timeout=0.5)))
    call = up.start(10.0)
    step = call.next(10.0)
    assert isinstance(step, Attempt)
    assert (step.number, step.timeout) == (1, 0.5)
    call.record(10.1, OK)
    assert call.next(10.1) == Done(OK)
    assert call.next(10.2) == Done(OK)  # the verdict stays
    assert call.attempts == 1 and call.finished


def test_a_retry_goes_to_another_endpoint_after_waiting() -> None:
    up = upstream(policy(retry=RetryConfig(attempts=3, backoff=NO_WAIT)), n=3)
    final, steps = drive(up.start(0.0), [REFUSED, REFUSED, OK])
    assert final == Done(OK)
    attempts = attempts_of(steps)
    assert [a.number for a in attempts] == [1, 2, 3]
    ids = [a.endpoint.id for a in attempts]
    assert ids[0] != ids[1] and ids[1] != ids[2]
    assert [s for s in steps if isinstance(s, Wait)] == [Wait(0.01), Wait(0.02 / 2)]


def test_a_wait_is_returned_once_then_the_retry() -> None:
    up = upstream(policy(retry=RetryConfig(backoff=NO_WAIT)))
    call = up.start(0.0)
    call.next(0.0)
    call.record(0.1, REFUSED)
    assert call.next(0.1) == Wait(0.01)
    retry = call.next(0.11)
    assert isinstance(retry, Attempt) and retry.number == 2


def test_an_answer_not_in_retry_on_is_the_result() -> None:
    up = upstream(policy())
    final, steps = drive(up.start(0.0), [status(404)])
    assert final == Done(status(404)) and len(attempts_of(steps)) == 1


def test_a_failure_not_in_retry_on_fails_the_call() -> None:
    up = upstream(policy(retry=RetryConfig(on=("5xx",))))
    final, _ = drive(up.start(0.0), [REFUSED])
    assert final == Fail(FailReason.NOT_RETRYABLE, REFUSED)
    final, _ = drive(up.start(0.0), [ERROR])
    assert final == Fail(FailReason.NOT_RETRYABLE, ERROR)


def test_attempts_run_out() -> None:
    up = upstream(policy(retry=RetryConfig(attempts=3, backoff=NO_WAIT)))
    final, steps = drive(up.start(0.0), [status(503)] * 3)
    assert final == Fail(FailReason.ATTEMPTS_EXHAUSTED, status(503))
    assert len(attempts_of(steps)) == 3


def test_the_deadline_bounds_every_attempt_and_wait() -> None:
    backoff = BackoffConfig(base=0.3, max=0.3, jitter=Jitter.NONE)
    retry = RetryConfig(attempts=10, per_try_timeout=0.4, backoff=backoff)
    up = upstream(policy(timeout=1.0, retry=retry))
    final, steps = drive(up.start(0.0), [TIMED_OUT] * 10)
    attempts = attempts_of(steps)
    # 0.0-0.4 try, 0.4-0.7 wait, 0.7-1.0 try (cut to the 0.3s left), no time for another
    assert [a.timeout for a in attempts] == [0.4, pytest.approx(0.3)]
    assert final == Fail(FailReason.DEADLINE_EXCEEDED, TIMED_OUT)


def test_no_attempt_starts_after_the_deadline() -> None:
    up = upstream(policy(timeout=1.0))
    call = up.start(0.0)
    assert call.next(1.0) == Fail(FailReason.DEADLINE_EXCEEDED, None)
    assert call.attempts == 0


def test_the_budget_can_refuse_a_retry() -> None:
    dry = RetryBudgetConfig(ratio=0.0, min_per_second=0.0, window=10.0)
    up = upstream(policy(retry=RetryConfig(budget=dry, backoff=NO_WAIT)))
    call = up.start(0.0)
    final, steps = drive(call, [REFUSED, OK])
    assert final == Fail(FailReason.BUDGET_EXHAUSTED, REFUSED)
    assert call.retries_denied == 1 and len(attempts_of(steps)) == 1
    assert up.budget is not None and up.budget.denied_total == 1


def test_the_budget_funds_retries_from_requests() -> None:
    budget = RetryBudgetConfig(ratio=0.5, min_per_second=0.0, window=10.0)
    up = upstream(policy(retry=RetryConfig(budget=budget, backoff=NO_WAIT)))
    for _ in range(2):  # two requests deposit a token
        drive(up.start(0.0), [OK])
    call = up.start(0.0)  # and this one half a token more: one retry, not two
    final, _ = drive(call, [REFUSED, REFUSED, OK])
    assert final == Fail(FailReason.BUDGET_EXHAUSTED, REFUSED)
    assert call.attempts == 2 and call.retries_denied == 1


def test_an_open_breaker_refuses_attempts_until_it_half_opens() -> None:
    breaker = CircuitBreakerConfig(mode="consecutive", consecutive_failures=2, open_for=5.0)
    up = upstream(policy(circuit_breaker=breaker, retry=RetryConfig(attempts=1)))
    for _ in range(2):
        drive(up.start(0.0), [status(500)])
    assert up.breaker is not None and up.breaker.state(0.0) is BreakerState.OPEN
    assert drive(up.start(1.0), [])[0] == Fail(FailReason.BREAKER_OPEN, None)
    final, _ = drive(up.start(6.0), [OK], start=6.0)  # the half-open probe
    assert final == Done(OK)


def test_a_cancelled_probe_gives_its_slot_back() -> None:
    breaker = CircuitBreakerConfig(
        mode="consecutive", consecutive_failures=1, open_for=1.0, half_open_calls=1
    )
    up = upstream(policy(circuit_breaker=breaker, retry=RetryConfig(attempts=1)))
    drive(up.start(0.0), [REFUSED])
    probe = up.start(2.0)
    assert isinstance(probe.next(2.0), Attempt)  # took the only probe slot
    assert up.start(2.0).next(2.0) == Fail(FailReason.BREAKER_OPEN, None)
    probe.cancel(2.5)
    probe.cancel(2.5)  # idempotent
    assert isinstance(up.start(2.6).next(2.6), Attempt)


def test_the_bulkhead_holds_a_permit_for_the_whole_call() -> None:
    up = upstream(policy(concurrency_limit=2, retry=RetryConfig(backoff=NO_WAIT)))
    assert up.bulkhead is not None
    first, second = up.start(0.0), up.start(0.0)
    third = up.start(0.0)
    assert third.next(0.0) == Fail(FailReason.CONCURRENCY_LIMIT, None)
    assert up.bulkhead.in_use == 2
    first.next(0.0)
    first.record(0.1, REFUSED)  # waiting for a retry still holds the permit
    assert up.bulkhead.in_use == 2
    drive(first, [OK], start=0.1)
    assert up.bulkhead.in_use == 1
    second.cancel(0.2)
    assert up.bulkhead.in_use == 0


def test_cancel_releases_everything_held() -> None:
    breaker = CircuitBreakerConfig()
    up = upstream(policy(circuit_breaker=breaker, concurrency_limit=5))
    call = up.start(0.0)
    step = call.next(0.0)
    assert isinstance(step, Attempt)
    host = up.balancer.host(step.endpoint.id)
    assert host is not None and host.active == 1
    call.cancel(0.1)
    assert host.active == 0
    assert up.bulkhead is not None and up.bulkhead.in_use == 0
    with pytest.raises(CallStateError, match="cancelled"):
        call.next(0.2)


def test_protocol_errors_are_reported() -> None:
    up = upstream(policy())
    call = up.start(0.0)
    with pytest.raises(CallStateError, match="without an attempt"):
        call.record(0.0, OK)
    call.next(0.0)
    with pytest.raises(CallStateError, match="in flight"):
        call.next(0.0)


def test_the_adaptive_throttle_sheds_load_when_the_upstream_refuses() -> None:
    throttle = AdaptiveThrottleConfig(k=1.0, window=60.0)
    up = upstream(policy(adaptive_throttle=throttle, retry=RetryConfig(attempts=1)))
    reasons = [drive(up.start(0.0), [status(503)] * 5)[0] for _ in range(200)]
    throttled = [r for r in reasons if isinstance(r, Fail) and r.reason is FailReason.THROTTLED]
    assert len(throttled) > 100


def test_a_throttled_attempt_gives_back_its_breaker_admission() -> None:
    breaker = CircuitBreakerConfig(
        mode="consecutive", consecutive_failures=1, open_for=1.0, half_open_calls=1
    )
    throttle = AdaptiveThrottleConfig(k=1.0, window=600.0)
    up = upstream(policy(circuit_breaker=breaker, adaptive_throttle=throttle))
    assert up.throttle is not None
    for _ in range(50):  # teach the throttle that nothing gets accepted
        up.throttle.should_reject(0.0, up.rng)
    breaker = up.breaker
    assert breaker is not None
    breaker.on_failure(0.0, 0.01, breaker.admit(0.0))  # trip it
    assert breaker.state(5.0) is BreakerState.HALF_OPEN
    throttled = 0
    for _ in range(100):
        step = up.start(5.0).next(5.0)
        if isinstance(step, Attempt):
            break
        assert step == Fail(FailReason.THROTTLED, None)
        throttled += 1
        # the breaker's single probe slot was given back: it can be taken again
        ticket = breaker.admit(5.0)
        assert ticket != 0
        breaker.on_cancel(5.0, ticket)
    assert throttled > 0


def test_the_outlier_detector_ejects_a_failing_endpoint() -> None:
    outlier = OutlierDetectionConfig(consecutive_failures=2, base_ejection=30.0, max_ejected=0.5)
    up = upstream(policy(outlier_detection=outlier, retry=RetryConfig(attempts=1)), n=3)
    for _ in range(12):
        call = up.start(0.0)
        step = call.next(0.0)
        assert isinstance(step, Attempt)
        call.record(0.0, status(500) if step.endpoint.id == "ep-0" else OK)
    assert up.outlier is not None and up.outlier.ejected(1.0) == frozenset({"ep-0"})
    seen = set()
    for _ in range(30):
        call = up.start(1.0)
        step = call.next(1.0)
        assert isinstance(step, Attempt)
        seen.add(step.endpoint.id)
        call.record(1.0, OK)
    assert seen == {"ep-1", "ep-2"}
    late = {drive(up.start(40.0), [OK], start=40.0)[1][0].endpoint.id for _ in range(6)}  # type: ignore[union-attr]
    assert "ep-0" in late  # the ejection ended


def test_unhealthy_endpoints_are_skipped_and_come_back() -> None:
    up = upstream(policy(), n=3)
    up.set_healthy("ep-1", False)
    ids = {attempts_of(drive(up.start(0.0), [OK])[1])[0].endpoint.id for _ in range(12)}
    assert ids == {"ep-0", "ep-2"}
    up.set_healthy("ep-1", True)
    ids = {attempts_of(drive(up.start(0.0), [OK])[1])[0].endpoint.id for _ in range(12)}
    assert ids == {"ep-0", "ep-1", "ep-2"}


def test_no_endpoint_fails_the_call() -> None:
    up = upstream(policy(load_balancer=LoadBalancerConfig(panic_threshold=0.0)), n=1)
    up.set_healthy("ep-0", False)
    assert drive(up.start(0.0), [])[0] == Fail(FailReason.NO_ENDPOINT, None)
    up.set_endpoints([])
    assert drive(up.start(0.0), [])[0] == Fail(FailReason.NO_ENDPOINT, None)


def test_a_user_predicate_adds_retry_conditions() -> None:
    slow = Outcome(OutcomeKind.ANSWER, latency=0.9)
    up = upstream(policy(retry=RetryConfig(backoff=NO_WAIT)))
    up = type(up)(up.policy, up.endpoints, rng=up.rng, retry_predicate=lambda o: o.latency > 0.5)
    final, steps = drive(up.start(0.0), [slow, OK])
    assert final == Done(OK) and len(attempts_of(steps)) == 2
    call = up.start(0.0)
    call.next(0.0)
    assert call.record_success(0.9, 0.9) is False  # same predicate on the fast path
    assert call.next(0.9) == Wait(0.01)
    assert isinstance(call.next(0.91), Attempt)


def test_record_success_is_record_of_a_plain_success() -> None:
    up = upstream(policy(circuit_breaker=CircuitBreakerConfig()))
    call = up.start(0.0)
    call.next(0.0)
    assert call.record_success(0.25, 0.25) is True
    assert call.next(0.3) == Done(Outcome(OutcomeKind.ANSWER, latency=0.25))


def test_the_key_routes_hash_balanced_calls() -> None:
    up = upstream(policy(load_balancer=LoadBalancerConfig(strategy=Strategy.RING_HASH)), n=5)
    ids = {
        attempts_of(drive(up.start(0.0, key="cart-7"), [OK])[1])[0].endpoint.id for _ in range(10)
    }
    assert len(ids) == 1


def test_endpoint_updates_keep_survivors_and_forget_the_departed() -> None:
    outlier = OutlierDetectionConfig(consecutive_failures=1, max_ejected=1.0)
    up = upstream(policy(outlier_detection=outlier), n=3)
    call = up.start(0.0)
    step = call.next(0.0)
    assert isinstance(step, Attempt) and step.endpoint.id == "ep-0"
    host = up.balancer.host("ep-0")
    up.set_endpoints(list(up.endpoints[:2]))
    assert up.balancer.host("ep-0") is host and host is not None and host.active == 1
    call.record(0.1, OK)
    assert host.active == 0
    assert [e.id for e in up.endpoints] == ["ep-0", "ep-1"]


def test_the_package_exports_the_public_api() -> None:
    import meshspec_runtime

    assert set(meshspec_runtime.__all__) >= {"UpstreamPolicies", "call_sync", "call_async"}
    for name in meshspec_runtime.__all__:
        assert getattr(meshspec_runtime, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = meshspec_runtime.nope  # type: ignore[attr-defined]


def test_policies_for_builds_one_upstream_per_bundle_entry() -> None:
    from meshspec_runtime import ServicePolicies, Upstream, policies_for

    service = ServicePolicies(
        name="checkout",
        port=8080,
        upstreams={
            "payments": Upstream(
                service="payments", endpoints=tuple(endpoints(2)), policy=policy()
            ),
            "inventory": Upstream(service="inventory", endpoints=(), policy=UpstreamPolicy()),
        },
    )
    built = policies_for(service, rng=random.Random(0))
    assert sorted(built) == ["inventory", "payments"]
    assert [e.id for e in built["payments"].endpoints] == ["ep-0", "ep-1"]
    assert drive(built["inventory"].start(0.0), [])[0] == Fail(FailReason.NO_ENDPOINT, None)


def test_record_success_with_a_status_follows_the_conditions() -> None:
    up = upstream(policy(retry=RetryConfig(attempts=2, backoff=NO_WAIT)))
    assert 200 in up.benign_statuses and 404 in up.benign_statuses
    assert not {500, 503, 429} & up.benign_statuses
    call = up.start(0.0)
    call.next(0.0)
    assert call.record_success(0.1, 0.1, 503) is False  # retryable
    assert call.next(0.1) == Wait(0.01)
    call.next(0.11)
    assert call.record_success(0.2, 0.09, 503) is False  # and now out of attempts
    assert call.next(0.2) == Fail(FailReason.ATTEMPTS_EXHAUSTED, status(503, latency=0.09))
    call = up.start(0.0)
    call.next(0.0)
    assert call.record_success(0.1, 0.1, 201) is True
    assert call.next(0.1) == Done(status(201, latency=0.1))


def test_an_exception_while_picking_gives_the_probe_slot_back() -> None:
    # A half-open probe slot is taken before the balancer picks; a pick that raises (here a
    # hash key with a lone surrogate, which has no UTF-8 form) must not keep it, or the
    # breaker stays half-open for good.
    breaker = CircuitBreakerConfig(
        mode="consecutive", consecutive_failures=1, open_for=1.0, half_open_calls=1
    )
    ring = LoadBalancerConfig(strategy=Strategy.RING_HASH)
    up = upstream(
        policy(circuit_breaker=breaker, retry=RetryConfig(attempts=1), load_balancer=ring)
    )
    drive(up.start(0.0), [REFUSED])
    call = up.start(2.0, key="cart-\ud800")
    with pytest.raises(UnicodeEncodeError):
        call.next(2.0)
    call.cancel(2.0)
    assert up.breaker is not None and up.breaker.probes_admitted == 0
    assert isinstance(up.start(2.1, key="cart-7").next(2.1), Attempt)
