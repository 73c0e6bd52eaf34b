"""``Mesh`` with ``shared_budgets``: which budgets it shares, the events and metrics that say
how they decide, and the store's lifecycle (a store driven by hand, over a MemoryStore)."""

from __future__ import annotations

import logging
import random

import pytest
from meshspec_runtime import BudgetFellBack, BudgetShared, BudgetSharing, Mesh
from meshspec_runtime.bundle import Endpoint, ServicePolicies, Upstream
from meshspec_runtime.policy.config import RetryBudgetConfig, RetryConfig, UpstreamPolicy
from meshspec_runtime.shared.budget import SharedBudget, shared_budget_for
from meshspec_runtime.shared.exchange import BudgetExchange, Send, SharingListener
from meshspec_runtime.shared.protocol import MemoryStore
from prometheus_client import CollectorRegistry


class HandDrivenStore:
    """A BudgetStore whose exchanges the test runs, against a MemoryStore or a dead store."""

    def __init__(self) -> None:
        self.memory = MemoryStore()
        self.exchanges: list[BudgetExchange] = []
        self.closed = False

    def share(
        self,
        config: RetryBudgetConfig,
        *,
        mesh: str,
        caller: str,
        upstream: str,
        listener: SharingListener | None = None,
    ) -> SharedBudget:
        budget = shared_budget_for(config, random.Random(1))
        exchange = BudgetExchange(
            budget, key=f"{mesh}/{caller}/{upstream}", member="me", rng=random.Random(2)
        )
        if listener is not None:
            exchange.add_listener(listener)
        self.exchanges.append(exchange)
        return budget

    def drive(self, now: float, up: bool) -> None:
        for exchange in self.exchanges:
            step = exchange.next(now)
            if isinstance(step, Send):
                reply = self.memory.exchange(step.request, now) if up else None
                exchange.receive(now, reply)

    def close(self) -> None:
        self.closed = True


def service(scope: str) -> ServicePolicies:
    def upstream(name: str, budget: RetryBudgetConfig | None) -> Upstream:
        endpoint = Endpoint(id=f"{name}-0", address="127.0.0.1", port=9)
        policy = UpstreamPolicy(retry=RetryConfig(budget=budget))
        return Upstream(service=name, endpoints=(endpoint,), policy=policy)

    return ServicePolicies(
        name="checkout",
        port=8080,
        upstreams={
            "payments": upstream("payments", RetryBudgetConfig(scope=scope)),
            "stock": upstream("stock", RetryBudgetConfig()),
            "mail": upstream("mail", None),
        },
    )


def test_only_budgets_of_scope_service_are_shared_and_their_state_is_reported() -> None:
    store = HandDrivenStore()
    registry = CollectorRegistry()
    mesh = Mesh(
        service("service"), mesh="shop", version="v1", shared_budgets=store, metrics=registry
    )
    seen: list[BudgetSharing] = []
    mesh.on(BudgetSharing, seen.append)
    assert len(store.exchanges) == 1
    assert mesh.upstream("payments").policies.budget is store.exchanges[0].budget
    assert not hasattr(mesh.upstream("stock").policies.budget, "view")

    def gauge(name: str) -> float | None:
        labels = {"caller": "checkout", "upstream": "payments"}
        return registry.get_sample_value(name, labels)

    assert gauge("meshspec_retry_budget_shared") == 0  # joining: not shared yet
    store.drive(0.0, up=True)
    store.drive(0.2, up=False)
    store.drive(0.4, up=False)
    assert gauge("meshspec_retry_budget_shared") == 0
    assert gauge("meshspec_retry_budget_fallbacks_total") == 1
    store.drive(1.0, up=True)
    assert gauge("meshspec_retry_budget_shared") == 1
    assert [type(e) for e in seen] == [BudgetShared, BudgetFellBack, BudgetShared]
    assert [(e.caller, e.upstream, e.members) for e in seen][1] == ("checkout", "payments", 1)
    assert (
        registry.get_sample_value(
            "meshspec_retry_budget_shared", {"caller": "checkout", "upstream": "stock"}
        )
        is None
    )  # a budget of scope process is not shared: no series
    mesh.close()
    assert store.closed


def test_a_budget_of_scope_service_without_a_store_counts_alone_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="meshspec_runtime"):
        mesh = Mesh(service("service"), mesh="shop", version="v1")
    assert "checkout -> payments: retry budget has scope: service" in caplog.text
    assert not hasattr(mesh.upstream("payments").policies.budget, "view")
