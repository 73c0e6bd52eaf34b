"""The mesh spec language: models, YAML loading with positions, overlays, validation.

Public API::

    from meshspec.spec import load_spec, SpecError, Diagnostic, MeshSpec
    spec = load_spec(Path("examples/shop.yaml"), env="staging", overrides=["a.b=1"])
    # SpecError.diagnostics: every problem, each with file, line, column, code, path, message

    from meshspec.spec.resolve import edge_policy, edge_objective, health_check
    policy = edge_policy(spec, "checkout", "payments")   # runtime UpstreamPolicy
    slo = edge_objective(spec, "checkout", "payments")   # 0.999
    check = health_check(spec, "payments")               # ResolvedHealthCheck | None

    # Other YAML languages (scenarios) reuse the machinery:
    from meshspec.spec import validate_document, load_yaml_document
    model = validate_document(Path("scenario.yaml"), ScenarioModel)  # or SpecError

Error codes and merge rules: docs/spec.md.
"""

from __future__ import annotations

from meshspec.spec.diagnostics import Diagnostic, SpecError
from meshspec.spec.document import Provenance, validate_data, validate_document
from meshspec.spec.loader import check_spec_file, load_spec
from meshspec.spec.models import (
    EdgePolicySpec,
    HealthCheckSpec,
    InstanceSpec,
    MeshSpec,
    ServiceSpec,
)
from meshspec.spec.resolve import ResolvedHealthCheck, edge_objective, edge_policy, health_check
from meshspec.spec.yamlio import PositionLookup, load_yaml_document

__all__ = [
    "Diagnostic",
    "EdgePolicySpec",
    "HealthCheckSpec",
    "InstanceSpec",
    "MeshSpec",
    "PositionLookup",
    "Provenance",
    "ResolvedHealthCheck",
    "ServiceSpec",
    "SpecError",
    "check_spec_file",
    "edge_objective",
    "edge_policy",
    "health_check",
    "load_spec",
    "load_yaml_document",
    "validate_data",
    "validate_document",
]
