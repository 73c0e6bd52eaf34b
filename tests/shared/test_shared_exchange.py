"""The shared budget's sans-I/O parts: the store's rule, the local view, the exchange."""

from __future__ import annotations

import math
import random

import pytest
from meshspec_runtime.policy.config import RetryBudgetConfig
from meshspec_runtime.shared.budget import SharedRetryBudget, SharedTokenBucket
from meshspec_runtime.shared.exchange import (
    ExchangeStateError,
    Send,
    SharingState,
    Sleep,
)
from meshspec_runtime.shared.protocol import BudgetShape, ExchangeRequest, MemoryStore
from sharing import drive, members, traffic

WINDOW = RetryBudgetConfig(ratio=0.2, min_per_second=10, window=10, scope="service")
BUCKET = RetryBudgetConfig(
    kind="bucket", ratio=0.1, initial=20, cap=50, threshold=5, scope="service"
)


def request(
    config: RetryBudgetConfig, member: str, requests: int, retries: int, demand: float = 0.0
) -> ExchangeRequest:
    key = "mesh/caller/upstream"
    return ExchangeRequest(key, member, requests, retries, demand, BudgetShape.of(config), 1, 60)


def test_store_window_sums_every_members_counts_over_the_window() -> None:
    store = MemoryStore()
    first = store.exchange(request(WINDOW, "a", 100, 0), 0.0)
    assert (first.balance, first.members) == (100 + 0.2 * 100, 1)
    second = store.exchange(request(WINDOW, "b", 50, 10), 0.5)
    assert (second.balance, second.members) == (100 + 0.2 * 150 - 10, 2)
    # 10 s later the counts of [0, 1) left the window; "a" and "b" stopped counting at 1.0, 1.5
    later = store.exchange(request(WINDOW, "c", 0, 0), 10.9)
    assert (later.balance, later.members) == (100, 1)


def test_store_bucket_starts_at_its_fill_and_caps_deposits() -> None:
    store = MemoryStore()
    assert store.exchange(request(BUCKET, "a", 0, 3), 0.0).balance == 17
    assert store.exchange(request(BUCKET, "a", 1000, 0), 0.1).balance == 50
    assert store.exchange(request(BUCKET, "b", 10, 60), 0.2).balance == -10  # min(50, 50 + 1) - 60


def test_store_smooths_the_supply_over_a_second() -> None:
    store = MemoryStore()
    assert store.exchange(request(BUCKET, "a", 100, 0), 0.0).supply == pytest.approx(10.0)
    later = store.exchange(request(BUCKET, "a", 0, 0), 2.0).supply
    assert later == pytest.approx(10.0 * math.exp(-2.0))


def test_store_sums_the_live_members_demands() -> None:
    store = MemoryStore()
    assert store.exchange(request(WINDOW, "a", 0, 0, demand=3.0), 0.0).demand == 3.0
    assert store.exchange(request(WINDOW, "b", 0, 0, demand=1.5), 0.5).demand == 4.5
    assert store.exchange(request(WINDOW, "a", 0, 0, demand=0.5), 0.9).demand == 2.0
    assert store.exchange(request(WINDOW, "a", 0, 0, demand=0.5), 1.6).demand == 0.5  # b left


def test_joining_budget_decides_alone_then_grants_in_proportion_to_demand() -> None:
    (member,) = members(WINDOW, 1)
    budget = member.budget
    assert isinstance(budget, SharedRetryBudget)
    assert member.exchange.state is SharingState.JOINING
    # before any answer the local budget holds the whole reserve (100 tokens)
    assert sum(budget.try_withdraw(0.0) for _ in range(120)) == 100
    store = MemoryStore()
    store.exchange(request(WINDOW, "other", 0, 0, demand=3000.0), 0.0)  # another replica
    drive(member, store, 0.0)
    assert member.exchange.state is SharingState.SHARED
    view = budget.view
    assert view.members == 2
    assert view.probability == 0 and not budget.try_withdraw(0.01)  # 100 - 100 spent
    assert not any(budget.try_withdraw(0.5) for _ in range(20))
    # the other replica deposits 250 requests: 50 tokens; this one wanted 21 retries in 1 s
    store.exchange(request(WINDOW, "other", 250, 0, demand=3000.0), 0.05)
    drive(member, store, 1.0)
    assert view.demand == pytest.approx(21 * (1 - math.exp(-1.0)))
    demand = 3000.0 + view.demand
    # to spend until the next answer: the balance and a period of the supply (50 tokens
    # deposited at 0.05, smoothed over a second)
    available = 50 + 50 * math.exp(-0.95) * 0.1
    assert view.probability == pytest.approx(available / (demand * 0.1))
    assert view.limit == pytest.approx(available * view.demand / demand + 1)
    # granted at most its part (plus one) until the next answer, at most 1 in q of the wanted
    granted = sum(budget.try_withdraw(1.01) for _ in range(1000))
    assert granted == math.floor(view.limit)


@pytest.mark.parametrize("config", [WINDOW, BUCKET], ids=["window", "bucket"])
def test_members_together_spend_no_more_than_the_service_budget(
    config: RetryBudgetConfig,
) -> None:
    """4 processes at 20 req/s, half their requests failing, for 30 s. Sharing, they spend one
    budget; each on its own (the store never answers), each spends a whole one."""
    shared = members(config, 4)
    traffic(shared, MemoryStore(), start=0.0, stop=30.0, rate=20, failure=0.5, rng=random.Random(7))
    alone = members(config, 4)
    traffic(alone, None, start=0.0, stop=30.0, rate=20, failure=0.5, rng=random.Random(7))
    requests = sum(m.requests for m in shared)
    assert requests == sum(m.requests for m in alone) == 4 * 20 * 30
    retries = sum(m.retries for m in shared)
    separate = sum(m.retries for m in alone)
    if config.kind == "window":
        # withdrawals expire with the window: 3 windows of reserve + ratio x requests
        budget = 3 * (config.min_per_second * config.window + config.ratio * 800)
        each_alone = 3 * (config.min_per_second * config.window + config.ratio * 200)
        wanted = 0.5 * requests  # below each one's budget: alone, every retry is granted
        assert separate == pytest.approx(min(wanted, 4 * each_alone), rel=0.05)
    else:
        budget = config.fill - config.threshold + config.ratio * requests
        # alone, each starts with its own fill above the threshold
        assert separate >= 0.95 * (4 * (config.fill - config.threshold) + config.ratio * requests)
    assert 0.9 * budget <= retries <= budget + len(shared)  # a member may overdraw by < 1
    assert separate > 1.15 * budget


def test_falls_back_after_two_failures_to_its_share_and_rejoins() -> None:
    store = MemoryStore()
    group = members(WINDOW, 2)
    for now in (0.0, 0.1):
        for member in group:
            drive(member, store, now)
    first = group[0]
    assert first.budget.view.members == 2
    drive(first, None, 0.2)
    assert first.exchange.state is SharingState.SHARED  # one failure: not yet
    drive(first, None, 0.4)
    assert first.exchange.state is SharingState.LOCAL
    assert first.transitions == [
        (SharingState.JOINING, SharingState.SHARED),
        (SharingState.SHARED, SharingState.LOCAL),
    ]
    # the fallback holds this process's share of the reserve: 100 / 2 members
    assert sum(first.budget.try_withdraw(0.45) for _ in range(80)) == 50
    step = first.exchange.next(0.4)
    assert isinstance(step, Sleep) and 0.4 + 0.05 <= step.until <= 0.4 + 0.1
    now = step.until
    drive(first, store, now)
    assert first.exchange.state is SharingState.SHARED
    assert first.transitions[-1] == (SharingState.LOCAL, SharingState.SHARED)
    # the retries spent while local reached the store with the rejoining exchange
    assert store.exchange(request(WINDOW, "x", 0, 0), now).balance == pytest.approx(100 - 50)


def test_backoff_doubles_with_jitter_up_to_its_ceiling() -> None:
    (member,) = members(WINDOW, 1, period=0.1)
    now, delays = 0.0, []
    for _ in range(12):
        step = member.exchange.next(now)
        assert isinstance(step, Send)
        member.exchange.receive(now, None)
        following = member.exchange.next(now)
        assert isinstance(following, Sleep)
        delays.append(following.until - now)
        now = following.until
    assert delays[0] == pytest.approx(0.1)  # the first failure: the next period
    ceilings = [min(2.0, 0.1 * 2**k) for k in range(11)]
    for delay, ceiling in zip(delays[1:], ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= 2.0


def test_the_driver_cannot_skip_a_receive_or_invent_one() -> None:
    (member,) = members(BUCKET, 1)
    with pytest.raises(ExchangeStateError, match="receive\\(\\) without a Send"):
        member.exchange.receive(0.0, None)
    assert isinstance(member.exchange.next(0.0), Send)
    with pytest.raises(ExchangeStateError, match="in flight"):
        member.exchange.next(0.0)


def test_counts_of_a_failed_exchange_are_sent_with_the_next() -> None:
    store = MemoryStore()
    (member,) = members(BUCKET, 1)
    budget = member.budget
    assert isinstance(budget, SharedTokenBucket)
    for _ in range(30):
        budget.on_request(0.0)
    drive(member, None, 0.0)
    drive(member, store, 0.1)
    assert store.exchange(request(BUCKET, "p0", 0, 0), 0.2).balance == pytest.approx(20 + 3)


def test_many_members_with_fractions_of_a_token_spend_the_budget_on_average() -> None:
    """200 replicas at 1 req/s share a bucket of 10: each one's share of the balance is a
    twentieth of a token, yet together they spend what the bucket gains."""
    config = RetryBudgetConfig(kind="bucket", ratio=0.1, cap=10, scope="service")
    group = members(config, 200)
    traffic(group, MemoryStore(), start=0.0, stop=30.0, rate=1, failure=0.5, rng=random.Random(3))
    requests = sum(m.requests for m in group)
    budget = config.fill + config.ratio * requests
    assert sum(m.retries for m in group) == pytest.approx(budget, rel=0.1)
