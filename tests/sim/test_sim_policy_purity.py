"""The simulator has no policy logic of its own: every decision comes from meshspec_runtime."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from support import REPO

SIM = sorted((REPO / "meshspec" / "sim").glob("*.py"))
POLICY_WORDS = re.compile(
    r"breaker|budget|balanc|backoff|throttl|outlier|retr(y|ies)|bulkhead", re.I
)


def _trees() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(encoding="utf-8"))) for path in SIM]


def test_no_policy_classes_or_functions_are_defined_in_the_simulator() -> None:
    for path, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef | ast.FunctionDef):
                assert not POLICY_WORDS.search(node.name), f"{path.name}: {node.name}"


def test_no_endpoint_picking_or_backoff_formulas() -> None:
    for path, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                # random.choice/choices/shuffle would be a balancer of its own.
                assert node.func.attr not in {"choice", "choices", "shuffle"}, path.name
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
                # base * multiplier ** n is a backoff of its own.
                raise AssertionError(f"{path.name}:{node.lineno}: exponentiation")


def test_policy_objects_come_from_the_runtime() -> None:
    imported: dict[str, str] = {}
    for _, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    imported[alias.name] = node.module
    assert imported["UpstreamPolicies"] == "meshspec_runtime.policy.upstream"
    assert imported["Attempt"] == imported["Wait"] == "meshspec_runtime.policy.call"
    # Nothing policy-shaped is imported from anywhere else.
    for name, module in imported.items():
        if POLICY_WORDS.search(name):
            assert module.startswith("meshspec_runtime."), (name, module)


def test_the_driver_records_every_attempt_with_the_call_machine() -> None:
    world = (REPO / "meshspec" / "sim" / "world.py").read_text(encoding="utf-8")
    # One call machine per logical request, stepped with SimPy's clock.
    assert "policies.start(start)" in world and "call.next(now)" in world
    assert world.count("call.record(") >= 4
