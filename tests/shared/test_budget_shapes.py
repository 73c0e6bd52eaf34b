"""The budget's shape and reach in the runtime's config, the token bucket, and the deposit
rule that ``UpstreamPolicies.start`` inlines (run both ways for every kind of budget)."""

from __future__ import annotations

import random

import pytest
from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.policy.budget import (
    Budget,
    RetryBudget,
    TokenBucketBudget,
    budget_for,
    deposit,
)
from meshspec_runtime.policy.config import RetryBudgetConfig, RetryConfig, UpstreamPolicy
from meshspec_runtime.policy.upstream import UpstreamPolicies
from meshspec_runtime.shared.budget import shared_budget_for
from pydantic import ValidationError

BUCKET = RetryBudgetConfig(kind="bucket", ratio=0.1, cap=10, threshold=5)


def test_a_bucket_starts_full_gains_ratio_per_request_and_stops_at_its_threshold() -> None:
    bucket = TokenBucketBudget(BUCKET)
    assert bucket.balance(0.0) == 10
    assert sum(bucket.try_withdraw(0.0) for _ in range(10)) == 5  # 10 -> 5, the threshold
    assert bucket.denied_total == 5
    for _ in range(25):
        bucket.on_request(1.0)
    assert bucket.balance(1.0) == pytest.approx(7.5)
    assert sum(bucket.try_withdraw(1.0) for _ in range(5)) == 2
    for _ in range(1000):
        bucket.on_request(2.0)
    assert bucket.balance(2.0) == 10  # capped


def test_grpc_retry_throttling_and_brookers_bucket_are_expressible() -> None:
    # gRPC: maxTokens 10, tokenRatio 0.1, retries stop at half the bucket
    grpc = RetryBudgetConfig(kind="bucket", ratio=0.1, cap=10, threshold=5)
    assert budget_for(grpc).balance(0.0) == 10
    # Brooker: 0.1 of a token per call, a retry takes a whole one, an empty bucket to start
    brooker = RetryBudgetConfig(kind="bucket", ratio=0.1, initial=0, cap=100)
    bucket = budget_for(brooker)
    assert isinstance(bucket, TokenBucketBudget) and not bucket.try_withdraw(0.0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "window", "cap": 5}, "cap applies to a retry budget of kind bucket"),
        ({"kind": "bucket", "min_per_second": 1}, "min_per_second applies to a retry budget"),
        ({"kind": "bucket", "cap": 10, "initial": 11}, "initial \\(11\\) is above its cap"),
        ({"kind": "bucket", "cap": 10, "threshold": 9.5}, "leaves no token"),
        ({"scope": "region"}, "scope"),
    ],
)
def test_a_budget_of_mixed_or_impossible_shape_is_refused(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        RetryBudgetConfig.model_validate(fields)


def test_a_bundle_dump_of_a_bucket_loads_back() -> None:
    """The bundle writes every field: the other shape's defaults must not be refused."""
    dumped = RetryBudgetConfig(kind="bucket", cap=20, scope="service").model_dump(mode="json")
    assert RetryBudgetConfig.model_validate(dumped).cap == 20


@pytest.mark.parametrize(
    "config",
    [
        RetryBudgetConfig(ratio=0.5, min_per_second=0, window=1),
        RetryBudgetConfig(kind="bucket", ratio=0.5, initial=0, cap=1000),
    ],
    ids=["window", "bucket"],
)
def test_start_deposits_exactly_as_the_budgets_own_rule(config: RetryBudgetConfig) -> None:
    """``UpstreamPolicies.start`` inlines ``deposit``: the same requests at the same times
    leave every kind of budget (local and shared) with the same balance either way."""
    times = [0.0, 0.05, 0.05, 0.31, 0.99, 1.0, 1.5, 1.52, 2.7, 2.7]
    policy = UpstreamPolicy(retry=RetryConfig(budget=config))
    endpoint = Endpoint(id="a", address="127.0.0.1", port=1)

    def shared(config: RetryBudgetConfig) -> Budget:
        return shared_budget_for(config, random.Random(1))

    for made in (budget_for, shared):
        by_rule = made(config)
        up = UpstreamPolicies(policy, [endpoint], rng=random.Random(1))
        up.budget = made(config)
        for now in times:
            deposit(by_rule, now)
            up.start(now).cancel(now)
            assert up.budget.balance(now) == by_rule.balance(now)
        assert by_rule.balance(2.7) > 0
    assert isinstance(budget_for(RetryBudgetConfig()), RetryBudget)
