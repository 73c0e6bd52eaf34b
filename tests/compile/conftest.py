"""Fixtures of the compile tests: resolved meshes built directly, and compiled bundles."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.policy.config import (
    CircuitBreakerConfig,
    LoadBalancerConfig,
    OutlierDetectionConfig,
    RetryBudgetConfig,
    RetryConfig,
    Strategy,
    UpstreamPolicy,
)

from meshspec.compile.ir import Edge, HealthCheck, ResolvedMesh, Service
from meshspec.compile.pipeline import BuiltBundle, build_bundle, write_bundle


def ir_mesh(retry_attempts: int = 3) -> ResolvedMesh:
    """A small mesh with every kind of record and policy the emitters handle."""
    payments_policy = UpstreamPolicy(
        timeout=1.0,
        retry=RetryConfig(
            attempts=retry_attempts, per_try_timeout=0.4, budget=RetryBudgetConfig(ratio=0.2)
        ),
        circuit_breaker=CircuitBreakerConfig(),
        load_balancer=LoadBalancerConfig(strategy=Strategy.LEAST_REQUEST, choices=2),
        outlier_detection=OutlierDetectionConfig(consecutive_failures=5, max_ejected=0.5),
        concurrency_limit=64,
    )
    inventory_policy = UpstreamPolicy(load_balancer=LoadBalancerConfig(strategy=Strategy.PEAK_EWMA))
    return ResolvedMesh(
        name="shop",
        datacenter="dc1",
        zone="shop.mesh.internal",
        dns_ttl=30,
        services=(
            Service(
                name="checkout",
                port=8080,
                protocol="http",
                tags=("web",),
                meta=(("team", "storefront"),),
                endpoints=(
                    Endpoint(id="checkout-0", address="10.0.1.10", port=8080),
                    Endpoint(id="checkout-1", address="10.0.1.11", port=8080),
                ),
                health_check=HealthCheck("http", "/healthz", 10.0, 2.0, 60.0, 1, 3),
                edges=(
                    Edge("inventory", inventory_policy, 0.99),
                    Edge("payments", payments_policy, 0.999),
                ),
            ),
            Service(
                name="inventory",
                port=7000,
                protocol="tcp",
                tags=(),
                meta=(),
                endpoints=(
                    Endpoint(id="inventory-0", address="fd00::7", port=7000),
                    Endpoint(id="inventory-1", address="10.0.3.10", port=7001, weight=3),
                ),
                health_check=HealthCheck("tcp", None, 5.0, 1.0, None),
                edges=(),
            ),
            Service(
                name="payments",
                port=9090,
                protocol="grpc",
                tags=("pci", 'quote"tag'),
                meta=(),
                endpoints=(
                    Endpoint(id="payments-0", address="10.0.2.10", port=9090, weight=2),
                    Endpoint(id="payments-1", address="10.0.2.11", port=9090),
                ),
                health_check=HealthCheck("grpc", "payments.v1.Health", 5.0, 1.0, 120.0),
                edges=(),
            ),
        ),
    )


@pytest.fixture
def mesh() -> ResolvedMesh:
    return ir_mesh()


@pytest.fixture
def built(mesh: ResolvedMesh) -> BuiltBundle:
    return build_bundle(mesh, spec_digest="0" * 64)


@pytest.fixture
def write_ir_bundle(tmp_path: Path) -> Callable[[ResolvedMesh, str], Path]:
    def write(mesh: ResolvedMesh, name: str = "bundle") -> Path:
        out = tmp_path / name
        write_bundle(build_bundle(mesh, spec_digest="0" * 64), out)
        return out

    return write
