"""Deadline propagation: the context's deadline caps calls; the header's format."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from meshspec_runtime import CallFailed, FailReason, call_async, call_sync, deadline_scope
from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.deadline import (
    current_deadline,
    format_timeout_header,
    parse_timeout_header,
    time_left,
)
from meshspec_runtime.policy.config import RetryConfig, UpstreamPolicy
from meshspec_runtime.policy.upstream import UpstreamPolicies


def upstream(policy: UpstreamPolicy) -> UpstreamPolicies:
    endpoint = Endpoint(id="payments-0", address="127.0.0.1", port=9)
    return UpstreamPolicies(policy, [endpoint], rng=random.Random(1))


def test_scopes_nest_and_only_shrink() -> None:
    assert current_deadline() is None and time_left() is None
    with deadline_scope(1.0):
        outer = current_deadline()
        assert outer is not None and 0.9 < outer - time.monotonic() <= 1.0
        with deadline_scope(5.0):  # a longer inner timeout does not extend the request's
            assert current_deadline() == outer
        with deadline_scope(0.1):
            left = time_left()
            assert left is not None and left <= 0.1
        with deadline_scope(None):
            assert current_deadline() == outer
        assert current_deadline() == outer
    assert current_deadline() is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1500", 1.5),
        (b"250", 0.25),
        (" 0 ", 0.0),
        ("", None),
        ("-5", None),
        ("1.5", None),
        ("1e3", None),
        ("١٢", None),  # non-ASCII digits
        ("99999999999", None),  # above the cap
        (None, None),
    ],
)
def test_parse_timeout_header(value: str | bytes | None, seconds: float | None) -> None:
    assert parse_timeout_header(value) == seconds


def test_format_timeout_header_rounds_down_and_never_goes_negative() -> None:
    assert format_timeout_header(1.2349) == "1234"
    assert format_timeout_header(-0.5) == "0"


def test_the_deadline_in_force_caps_a_calls_attempts() -> None:
    policies = upstream(UpstreamPolicy(timeout=10.0, retry=RetryConfig(attempts=1)))
    seen: list[float] = []

    def attempt(endpoint: Endpoint, timeout: float) -> str:
        seen.append(timeout)
        return "ok"

    assert call_sync(policies, attempt) == "ok"
    with deadline_scope(0.3):
        assert call_sync(policies, attempt) == "ok"
    assert seen[0] == pytest.approx(10.0, abs=0.01)
    assert 0.2 < seen[1] <= 0.3


def test_a_call_under_a_passed_deadline_makes_no_attempt() -> None:
    policies = upstream(UpstreamPolicy(timeout=10.0))
    tried: list[Endpoint] = []
    with deadline_scope(-1.0), pytest.raises(CallFailed) as failed:
        call_sync(policies, lambda endpoint, timeout: tried.append(endpoint))
    assert failed.value.reason is FailReason.DEADLINE_EXCEEDED and tried == []


def test_asyncio_tasks_inherit_the_deadline() -> None:
    policies = upstream(UpstreamPolicy(timeout=10.0, retry=RetryConfig(attempts=1)))

    async def attempt(endpoint: Endpoint, timeout: float) -> float:
        return timeout

    async def serve() -> float:
        with deadline_scope(0.5):
            return await asyncio.create_task(call_async(policies, attempt))

    assert 0.4 < asyncio.run(serve()) <= 0.5
