"""meshspec-runtime: load a meshspec bundle and apply its policies on every outgoing call.

The public API, importable from here. Names load on first use, so that ``import
meshspec_runtime`` (which the compiler does for the bundle models) stays cheap.

    from meshspec_runtime import Mesh

    mesh = Mesh.open("build/shop", service="checkout")
    with mesh.httpx_client("payments") as client:
        client.post("/charge", json=order)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meshspec_runtime.bundle import (
        BUNDLE_FORMAT,
        Endpoint,
        Manifest,
        PolicyDocument,
        ServicePolicies,
        UnknownServiceError,
        Upstream,
    )
    from meshspec_runtime.deadline import (
        TIMEOUT_HEADER,
        current_deadline,
        deadline_scope,
        time_left,
    )
    from meshspec_runtime.discovery import ConsulDiscovery, DiscoverySettings, DnsDiscovery
    from meshspec_runtime.discovery.register import RegisterAs
    from meshspec_runtime.drivers.aio import call_async
    from meshspec_runtime.drivers.classify import (
        CallFailed,
        Classifier,
        UserClassifier,
        classify,
        classify_error,
    )
    from meshspec_runtime.drivers.sync import call_sync
    from meshspec_runtime.errors import register_error
    from meshspec_runtime.events import (
        BreakerTransition,
        BudgetFellBack,
        BudgetShared,
        BudgetSharing,
        CallRefused,
        DiscoveryExpired,
        DiscoveryFailed,
        DiscoveryRecovered,
        EmptyAnswerIgnored,
        EndpointsDiscovered,
        EndpointsEjected,
        EndpointsReturned,
        GoneAnswerHeld,
        InstanceDeregistered,
        InstanceRegistered,
        MeshEvent,
        RegistrationFailed,
        ReloadApplied,
        ReloadRefused,
    )
    from meshspec_runtime.loader import (
        Bundle,
        BundleError,
        ServiceBundle,
        ServiceNotInBundleError,
        load_bundle,
        load_service,
    )
    from meshspec_runtime.mesh import (
        Mesh,
        MeshClosedError,
        MeshError,
        MeshUpstream,
        ReloadResult,
        UnknownUpstreamError,
    )
    from meshspec_runtime.native import is_compiled
    from meshspec_runtime.policy.balancer import Balancer, Host, balancer_for
    from meshspec_runtime.policy.breaker import BreakerListener, BreakerState, CircuitBreaker
    from meshspec_runtime.policy.call import (
        Attempt,
        Call,
        Done,
        Fail,
        FailReason,
        Step,
        Wait,
    )
    from meshspec_runtime.policy.call_state_error import CallStateError
    from meshspec_runtime.policy.config import UpstreamPolicy
    from meshspec_runtime.policy.outcome import ConditionSet, Outcome, OutcomeKind
    from meshspec_runtime.policy.upstream import UpstreamPolicies, policies_for
    from meshspec_runtime.shared.redis import RedisStore

__all__ = [
    "BUNDLE_FORMAT",
    "TIMEOUT_HEADER",
    "Attempt",
    "Balancer",
    "BreakerListener",
    "BreakerState",
    "BreakerTransition",
    "BudgetFellBack",
    "BudgetShared",
    "BudgetSharing",
    "Bundle",
    "BundleError",
    "Call",
    "CallFailed",
    "CallRefused",
    "CallStateError",
    "CircuitBreaker",
    "Classifier",
    "ConditionSet",
    "ConsulDiscovery",
    "DiscoveryExpired",
    "DiscoveryFailed",
    "DiscoveryRecovered",
    "DiscoverySettings",
    "DnsDiscovery",
    "Done",
    "EmptyAnswerIgnored",
    "Endpoint",
    "EndpointsDiscovered",
    "EndpointsEjected",
    "EndpointsReturned",
    "Fail",
    "FailReason",
    "GoneAnswerHeld",
    "Host",
    "InstanceDeregistered",
    "InstanceRegistered",
    "Manifest",
    "Mesh",
    "MeshClosedError",
    "MeshError",
    "MeshEvent",
    "MeshUpstream",
    "Outcome",
    "OutcomeKind",
    "PolicyDocument",
    "RedisStore",
    "RegisterAs",
    "RegistrationFailed",
    "ReloadApplied",
    "ReloadRefused",
    "ReloadResult",
    "ServiceBundle",
    "ServiceNotInBundleError",
    "ServicePolicies",
    "Step",
    "UnknownServiceError",
    "UnknownUpstreamError",
    "Upstream",
    "UpstreamPolicies",
    "UpstreamPolicy",
    "UserClassifier",
    "Wait",
    "balancer_for",
    "call_async",
    "call_sync",
    "classify",
    "classify_error",
    "current_deadline",
    "deadline_scope",
    "is_compiled",
    "load_bundle",
    "load_service",
    "policies_for",
    "register_error",
    "time_left",
]

_HOMES: dict[str, str] = {
    **dict.fromkeys(
        [
            "BUNDLE_FORMAT",
            "Endpoint",
            "Manifest",
            "PolicyDocument",
            "ServicePolicies",
            "UnknownServiceError",
            "Upstream",
        ],
        "meshspec_runtime.bundle",
    ),
    "call_async": "meshspec_runtime.drivers.aio",
    **dict.fromkeys(
        ["CallFailed", "Classifier", "UserClassifier", "classify", "classify_error"],
        "meshspec_runtime.drivers.classify",
    ),
    "call_sync": "meshspec_runtime.drivers.sync",
    "is_compiled": "meshspec_runtime.native",
    **dict.fromkeys(
        ["TIMEOUT_HEADER", "current_deadline", "deadline_scope", "time_left"],
        "meshspec_runtime.deadline",
    ),
    "register_error": "meshspec_runtime.errors",
    **dict.fromkeys(
        [
            "BreakerTransition",
            "BudgetFellBack",
            "BudgetShared",
            "BudgetSharing",
            "CallRefused",
            "EndpointsEjected",
            "EndpointsReturned",
            "MeshEvent",
            "DiscoveryExpired",
            "DiscoveryFailed",
            "DiscoveryRecovered",
            "EmptyAnswerIgnored",
            "EndpointsDiscovered",
            "GoneAnswerHeld",
            "InstanceDeregistered",
            "InstanceRegistered",
            "RegistrationFailed",
            "ReloadApplied",
            "ReloadRefused",
        ],
        "meshspec_runtime.events",
    ),
    **dict.fromkeys(
        ["ConsulDiscovery", "DiscoverySettings", "DnsDiscovery"], "meshspec_runtime.discovery"
    ),
    "RegisterAs": "meshspec_runtime.discovery.register",
    **dict.fromkeys(
        [
            "Mesh",
            "MeshClosedError",
            "MeshError",
            "MeshUpstream",
            "ReloadResult",
            "UnknownUpstreamError",
        ],
        "meshspec_runtime.mesh",
    ),
    **dict.fromkeys(
        [
            "Bundle",
            "BundleError",
            "ServiceBundle",
            "ServiceNotInBundleError",
            "load_bundle",
            "load_service",
        ],
        "meshspec_runtime.loader",
    ),
    **dict.fromkeys(["Balancer", "Host", "balancer_for"], "meshspec_runtime.policy.balancer"),
    **dict.fromkeys(
        ["BreakerListener", "BreakerState", "CircuitBreaker"], "meshspec_runtime.policy.breaker"
    ),
    **dict.fromkeys(
        ["Attempt", "Call", "Done", "Fail", "FailReason", "Step", "Wait"],
        "meshspec_runtime.policy.call",
    ),
    "CallStateError": "meshspec_runtime.policy.call_state_error",
    "UpstreamPolicy": "meshspec_runtime.policy.config",
    **dict.fromkeys(["ConditionSet", "Outcome", "OutcomeKind"], "meshspec_runtime.policy.outcome"),
    **dict.fromkeys(["UpstreamPolicies", "policies_for"], "meshspec_runtime.policy.upstream"),
    "RedisStore": "meshspec_runtime.shared.redis",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'meshspec_runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
