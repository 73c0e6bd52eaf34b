"""retry.stop_above: retries stop while the recent first-try failure rate is above the
threshold (Brooker's breaker that breaks only retries); first tries always go."""

from __future__ import annotations

from meshspec_runtime.policy.call import Attempt, Done, Fail, FailReason
from meshspec_runtime.policy.config import (
    BackoffConfig,
    Jitter,
    LoadBalancerConfig,
    RetryConfig,
    RetryStopConfig,
    Strategy,
    UpstreamPolicy,
)
from runtime_call_kit import OK, drive, status, upstream

ERROR = status(503)
STOP = RetryStopConfig(failure_rate=0.25, window=10.0, minimum_requests=4)
POLICY = UpstreamPolicy(
    timeout=5.0,
    retry=RetryConfig(
        attempts=3,
        on=("5xx",),
        backoff=BackoffConfig(base=0.001, max=0.001, jitter=Jitter.NONE),
        stop_above=STOP,
    ),
    load_balancer=LoadBalancerConfig(strategy=Strategy.ROUND_ROBIN),
)


def test_retries_go_below_the_threshold_and_stop_above_it() -> None:
    up = upstream(POLICY)
    # 4 successes: requests 4, failures 0 -> a failing call retries (1 of 5 = 20% <= 25%)
    for i in range(4):
        assert drive(up.start(float(i) * 0.1), [OK])[0] == Done(OK)
    final, steps = drive(up.start(0.5), [ERROR, OK], start=0.5)
    assert final == Done(OK)
    assert sum(isinstance(s, Attempt) for s in steps) == 2
    # a second failing first try: 2 of 6 requests (33%) -> no retry, the first try still went
    final, steps = drive(up.start(0.6), [ERROR], start=0.6)
    assert final == Fail(FailReason.RETRIES_STOPPED, ERROR)
    assert sum(isinstance(s, Attempt) for s in steps) == 1
    assert up.retry_stop is not None and up.retry_stop.stopped_total == 1


def test_the_failures_age_out_of_the_window() -> None:
    up = upstream(POLICY)
    for i in range(4):
        drive(up.start(i * 0.1), [ERROR, ERROR, ERROR], start=i * 0.1)
    final, _ = drive(up.start(1.0), [ERROR], start=1.0)
    assert final == Fail(FailReason.RETRIES_STOPPED, ERROR)
    # 20 s later the window holds only what came since: retries go again
    for i in range(4):
        drive(up.start(21.0 + i * 0.1), [OK], start=21.0 + i * 0.1)
    final, _ = drive(up.start(22.0), [ERROR, OK], start=22.0)
    assert final == Done(OK)


def test_below_the_minimum_requests_retries_go() -> None:
    up = upstream(POLICY)
    final, steps = drive(up.start(0.0), [ERROR, ERROR, OK])
    assert final == Done(OK)
    assert sum(isinstance(s, Attempt) for s in steps) == 3


def test_the_spec_lowers_stop_above_into_the_runtime_policy() -> None:
    from meshspec.spec import resolve
    from meshspec.spec.loader import load_spec_text

    text = """\
apiVersion: meshspec/v1
mesh: {name: m, datacenter: dc1, dns: {zone: m.internal, ttl: 30s}}
defaults:
  retry: {attempts: 3, stop_above: {failure_rate: 10%, window: 5s, minimum_requests: 3}}
services:
  a: {port: 1, instances: [{address: 10.0.0.1}], upstreams: {b: {}}}
  b: {port: 2, instances: [{address: 10.0.0.2}]}
"""
    spec = load_spec_text(text, display="m.yaml")
    policy = resolve.edge_policy(spec, "a", "b")
    assert policy.retry.stop_above == RetryStopConfig(
        failure_rate=0.1, window=5.0, minimum_requests=3
    )
