"""A bundle's policy values are bounded when it is loaded (meshspec_runtime.policy.limits).

A correctly hashed policy.json is still data from elsewhere: a value the spec would refuse must
be refused by the models the loader uses, not turn into a hang or a MemoryError later.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from meshspec_runtime.bundle import BUNDLE_FORMAT, PolicyDocument
from meshspec_runtime.policy.config import UpstreamPolicy
from meshspec_runtime.policy.limits import (
    MAX_ATTEMPTS,
    MAX_CHOICES,
    MAX_CONDITIONS,
    MAX_COUNT,
    MAX_COUNT_WINDOW,
    MAX_DURATION_SECONDS,
    MAX_HASH_ON_LENGTH,
    MAX_MAGLEV_TABLE_SIZE,
    MAX_MULTIPLIER,
    MAX_RATE_PER_SECOND,
    MAX_RING_SIZE,
    MAX_TIME_WINDOW_SECONDS,
    is_prime,
)
from pydantic import ValidationError


def document_json(policy: str) -> str:
    """policy.json text with one service calling another under ``policy`` (raw JSON text, so
    that ``Infinity`` can be written as Python's json module writes it)."""
    return (
        f'{{"format": {BUNDLE_FORMAT}, "mesh": "shop", "version": "v1",'
        ' "endpoints": {"api": [{"id": "api-0", "address": "10.0.0.1", "port": 80}]},'
        f' "policies": {{"p1": {policy}}},'
        ' "services": {"web": {"name": "web", "port": 8080,'
        ' "upstreams": {"api": {"service": "api", "policy": "p1"}}}}}'
    )


def test_a_sane_document_loads() -> None:
    document = PolicyDocument.model_validate_json(document_json('{"timeout": 2.0}'))
    assert document.policies["p1"].timeout == 2.0


@pytest.mark.parametrize(
    "policy",
    [
        '{"timeout": Infinity}',
        '{"timeout": NaN}',
        '{"retry": {"per_try_timeout": Infinity}}',
        '{"retry": {"budget": {"min_per_second": Infinity}}}',
        '{"retry": {"backoff": {"base": 0.1, "max": Infinity}}}',
        '{"adaptive_throttle": {"k": Infinity}}',
        '{"circuit_breaker": {"open_for": 1e300}}',
        '{"outlier_detection": {"max_ejection": Infinity}}',
        '{"load_balancer": {"ewma_decay": Infinity}}',
    ],
)
def test_document_refuses_infinite_or_unbounded_numbers(policy: str) -> None:
    with pytest.raises(ValidationError, match=r"policies\.p1"):
        PolicyDocument.model_validate_json(document_json(policy))


# Each: (the setting, the largest value the runtime takes, a value beyond it that a hand-made
# policy.json held and that hung or exhausted memory at the first call).
BEYOND: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (
        {"circuit_breaker": {"window": {"kind": "count", "size": MAX_COUNT_WINDOW}}},
        {"circuit_breaker": {"window": {"kind": "count", "size": 10**12}}},
    ),
    (
        {"circuit_breaker": {"window": {"kind": "time", "size": MAX_TIME_WINDOW_SECONDS}}},
        {"circuit_breaker": {"window": {"kind": "time", "size": 10**12}}},
    ),
    (
        {"load_balancer": {"strategy": "maglev", "maglev_table_size": MAX_MAGLEV_TABLE_SIZE}},
        {"load_balancer": {"strategy": "maglev", "maglev_table_size": 2**61 - 1}},
    ),
    (
        {"load_balancer": {"choices": MAX_CHOICES}},
        {"load_balancer": {"choices": 10**9}},
    ),
    (
        {"load_balancer": {"strategy": "ring_hash", "ring_size": MAX_RING_SIZE}},
        {"load_balancer": {"strategy": "ring_hash", "ring_size": 2**31 - 1}},
    ),
    (
        {"retry": {"on": ["5xx"] * MAX_CONDITIONS}},
        {"retry": {"on": ["5xx"] * 2_000_000}},
    ),
    (
        {"circuit_breaker": {"failure_on": ["timeout"] * MAX_CONDITIONS}},
        {"circuit_breaker": {"failure_on": ["timeout"] * (MAX_CONDITIONS + 1)}},
    ),
    ({"retry": {"attempts": MAX_ATTEMPTS}}, {"retry": {"attempts": MAX_ATTEMPTS + 1}}),
    (
        {"retry": {"budget": {"min_per_second": MAX_RATE_PER_SECOND}}},
        {"retry": {"budget": {"min_per_second": MAX_RATE_PER_SECOND * 10}}},
    ),
    (
        {"retry": {"backoff": {"multiplier": MAX_MULTIPLIER}}},
        {"retry": {"backoff": {"multiplier": MAX_MULTIPLIER * 10}}},
    ),
    ({"timeout": float(MAX_DURATION_SECONDS)}, {"timeout": MAX_DURATION_SECONDS * 2.0}),
    ({"concurrency_limit": MAX_COUNT}, {"concurrency_limit": MAX_COUNT + 1}),
    (
        {"load_balancer": {"hash_on": "h" * MAX_HASH_ON_LENGTH}},
        {"load_balancer": {"hash_on": "h" * 2_000_000}},
    ),
]


@pytest.mark.parametrize(("largest", "beyond"), BEYOND)
def test_upstream_policy_takes_the_limit_and_refuses_beyond(
    largest: dict[str, Any], beyond: dict[str, Any]
) -> None:
    UpstreamPolicy.model_validate(largest)
    started = time.perf_counter()
    with pytest.raises(ValidationError):
        UpstreamPolicy.model_validate(beyond)
    assert time.perf_counter() - started < 5.0  # refused, not worked through


@pytest.mark.parametrize(("largest", "beyond"), BEYOND)
def test_policy_document_refuses_beyond_the_limits(
    largest: dict[str, Any], beyond: dict[str, Any]
) -> None:
    PolicyDocument.model_validate_json(document_json(json.dumps(largest)))
    with pytest.raises(ValidationError, match=r"policies\.p1"):
        PolicyDocument.model_validate_json(document_json(json.dumps(beyond)))


def test_maglev_table_size_must_be_prime() -> None:
    assert is_prime(MAX_MAGLEV_TABLE_SIZE)
    with pytest.raises(ValidationError, match="must be a prime"):
        UpstreamPolicy.model_validate({"load_balancer": {"maglev_table_size": 65536}})
