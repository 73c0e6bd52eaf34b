"""Backoff strategies against the formulas of AWS's "Exponential Backoff and Jitter"."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from meshspec_runtime.policy.backoff import (
    DecorrelatedJitter,
    EqualJitter,
    FullJitter,
    NoJitter,
    backoff_for,
)
from meshspec_runtime.policy.config import BackoffConfig, Jitter


def delays(config: BackoffConfig, seed: int, retries: int) -> list[float]:
    backoff = backoff_for(config)
    rng = random.Random(seed)
    out: list[float] = []
    previous = 0.0
    for retry in range(1, retries + 1):
        previous = backoff.delay(retry, previous, rng)
        out.append(previous)
    return out


def test_no_jitter_is_capped_exponential() -> None:
    config = BackoffConfig(base=0.1, max=1.0, jitter=Jitter.NONE, multiplier=2)
    assert delays(config, 0, 7) == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])


def test_multiplier_one_is_a_constant_delay() -> None:
    config = BackoffConfig(base=0.3, max=1.0, jitter=Jitter.NONE, multiplier=1)
    assert delays(config, 0, 50) == [0.3] * 50


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_full_jitter_is_uniform_below_the_exponential(seed: int) -> None:
    config = BackoffConfig(base=0.05, max=2.0, jitter=Jitter.FULL)
    twin = random.Random(seed)
    expected = [twin.uniform(0, min(2.0, 0.05 * 2 ** (n - 1))) for n in range(1, 12)]
    assert delays(config, seed, 11) == pytest.approx(expected)


@pytest.mark.parametrize("seed", [0, 7])
def test_equal_jitter_keeps_half_and_randomises_half(seed: int) -> None:
    config = BackoffConfig(base=0.05, max=2.0, jitter=Jitter.EQUAL)
    twin = random.Random(seed)
    expected = []
    for n in range(1, 12):
        temp = min(2.0, 0.05 * 2 ** (n - 1))
        expected.append(temp / 2 + twin.uniform(0, temp / 2))
    assert delays(config, seed, 11) == pytest.approx(expected)


@pytest.mark.parametrize("seed", [0, 3])
def test_decorrelated_jitter_builds_on_the_previous_delay(seed: int) -> None:
    config = BackoffConfig(base=0.05, max=2.0, jitter=Jitter.DECORRELATED)
    twin = random.Random(seed)
    expected = []
    sleep = 0.05
    for _ in range(20):
        sleep = min(2.0, twin.uniform(0.05, sleep * 3))
        expected.append(sleep)
    assert delays(config, seed, 20) == pytest.approx(expected)


def test_backoff_for_picks_the_named_strategy() -> None:
    kinds = {
        Jitter.FULL: FullJitter,
        Jitter.EQUAL: EqualJitter,
        Jitter.DECORRELATED: DecorrelatedJitter,
        Jitter.NONE: NoJitter,
    }
    for jitter, kind in kinds.items():
        strategy = backoff_for(BackoffConfig(base=0.01, max=0.5, jitter=jitter, multiplier=3))
        assert type(strategy) is kind
        assert "base=0.01" in repr(strategy)


def test_huge_retry_numbers_saturate_without_overflow() -> None:
    backoff = backoff_for(BackoffConfig(base=0.001, max=30.0, jitter=Jitter.NONE, multiplier=10))
    assert backoff.delay(10**9, 0.0, random.Random(0)) == 30.0
    assert backoff.delay(1, 0.0, random.Random(0)) == 0.001


def test_full_jitter_mean_is_half_the_ceiling() -> None:
    backoff = backoff_for(BackoffConfig(base=1.0, max=1.0, jitter=Jitter.FULL))
    rng = random.Random(5)
    mean = sum(backoff.delay(3, 0.0, rng) for _ in range(20_000)) / 20_000
    assert 0.48 < mean < 0.52


def test_invalid_strategy_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="base <= cap"):
        FullJitter(2.0, 1.0)
    with pytest.raises(ValueError, match="multiplier"):
        NoJitter(0.1, 1.0, 0.5)


configs = st.builds(
    lambda base, span, jitter, multiplier: BackoffConfig(
        base=base, max=base * span, jitter=jitter, multiplier=multiplier
    ),
    base=st.floats(1e-6, 10.0),
    span=st.floats(1.0, 1e6),
    jitter=st.sampled_from(list(Jitter)),
    multiplier=st.floats(1.0, 100.0),
)


@given(
    config=configs,
    retry=st.integers(1, 10**6),
    previous=st.floats(0, 1e12),
    seed=st.integers(0, 2**32),
)
def test_every_delay_lies_within_zero_and_cap(
    config: BackoffConfig, retry: int, previous: float, seed: int
) -> None:
    delay = backoff_for(config).delay(retry, previous, random.Random(seed))
    assert 0.0 <= delay <= config.max


@given(config=configs, seed=st.integers(0, 2**32))
def test_identical_seeds_give_identical_delays(config: BackoffConfig, seed: int) -> None:
    assert delays(config, seed, 15) == delays(config, seed, 15)
