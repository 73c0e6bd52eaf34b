"""``meshspec lint``: policies that are each valid but do not fit together across the mesh.

API::

    from meshspec.lint import lint
    from meshspec.spec.loader import load_spec_located
    spec, provenance = load_spec_located(Path("examples/shop.yaml"))
    report = lint(spec, provenance, max_amplification=10, ignore={"W0303"})
    report.warnings          # located Diagnostics, severity "warning", in file order
    report.amplification     # service -> Amplification (worst-case factor and its path)

Codes, their reasoning and fixes: docs/lint.md.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from dataclasses import dataclass

from meshspec.lint.amplification import Amplification, amplification, amplification_findings
from meshspec.lint.breakers import breaker_findings
from meshspec.lint.codes import CODES, DEFAULT_MAX_AMPLIFICATION
from meshspec.lint.edges import edge_facts
from meshspec.lint.findings import Finding
from meshspec.lint.hedging import hedging_findings
from meshspec.lint.retries import idempotency_findings
from meshspec.lint.timeouts import timeout_findings
from meshspec.spec.diagnostics import Diagnostic, sort_diagnostics
from meshspec.spec.document import Provenance
from meshspec.spec.models import MeshSpec
from meshspec.spec.resolve import SpecPath, merged_edge

__all__ = ["CODES", "Amplification", "LintReport", "lint"]


@dataclass(frozen=True, slots=True)
class LintReport:
    warnings: list[Diagnostic]
    suppressed: int
    """Warnings silenced by the spec's suppressions or ``ignore``."""
    amplification: dict[str, Amplification]
    threshold: float


def lint(
    spec: MeshSpec,
    provenance: Provenance,
    *,
    max_amplification: float | None = None,
    ignore: Collection[str] = (),
) -> LintReport:
    """Every lint warning of a loaded spec (see :func:`meshspec.spec.loader.load_spec_located`).

    ``max_amplification`` overrides the spec's ``lint.max_amplification``; ``ignore`` drops
    whole codes.
    """
    settings = spec.lint
    threshold = (
        max_amplification
        if max_amplification is not None
        else settings.max_amplification
        if settings is not None and settings.max_amplification is not None
        else DEFAULT_MAX_AMPLIFICATION
    )
    edges = edge_facts(spec)
    worst = amplification(spec.services, edges)
    findings = [
        *amplification_findings(worst, edges, threshold),
        *timeout_findings(edges),
        *breaker_findings(edges),
        *idempotency_findings(edges),
        *hedging_findings(edges),
    ]
    warnings: list[Diagnostic] = []
    suppressed = 0
    fired: set[tuple[str, str, str]] = set()
    for finding in findings:
        fired.add((finding.caller, finding.upstream, finding.code))
        if finding.code in ignore or finding.code in _suppressions(spec, finding):
            suppressed += 1
            continue
        warnings.append(_locate(spec, provenance, finding))
    if "W0001" not in ignore:
        warnings.extend(_unused_suppressions(spec, provenance, fired))
    return LintReport(sort_diagnostics(warnings), suppressed, worst, threshold)


def _suppressions(spec: MeshSpec, finding: Finding) -> dict[str, str]:
    edge = spec.services[finding.caller].upstreams[finding.upstream]
    return edge.lint.suppress if edge is not None and edge.lint is not None else {}


def _locate(spec: MeshSpec, provenance: Provenance, finding: Finding) -> Diagnostic:
    """At the conflicting field set by the most specific layer (an edge's own value before
    its service's defaults before the mesh's), or at the edge's key when all are defaults."""
    merged = merged_edge(spec, finding.caller, finding.upstream)
    best: SpecPath | None = None
    rank = -1
    for field in finding.fields:
        origin = merged.origin(field)
        if origin is not None and len(origin) - len(field) > rank:
            best, rank = origin, len(origin) - len(field)
    edge_path: SpecPath = ("services", finding.caller, "upstreams", finding.upstream)
    message = f"{finding.message} (edge {finding.caller} -> {finding.upstream})"
    return provenance.diagnostic(
        best or edge_path, finding.code, message, key=best is None, severity="warning"
    )


def _unused_suppressions(
    spec: MeshSpec, provenance: Provenance, fired: set[tuple[str, str, str]]
) -> list[Diagnostic]:
    """W0001: a suppression that silences nothing hides the next real warning of its code
    and misleads a reader about the edge; an unknown code is usually a typo."""
    out: list[Diagnostic] = []
    for caller, service in spec.services.items():
        for upstream, edge in service.upstreams.items():
            if edge is None or edge.lint is None:
                continue
            for code in edge.lint.suppress:
                if (caller, upstream, code) in fired:
                    continue
                if code in CODES:
                    message = (
                        f"{code} is suppressed on edge {caller} -> {upstream}, which has no "
                        "such warning; remove the suppression"
                    )
                else:
                    close = difflib.get_close_matches(code, list(CODES), n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    message = f"{code} is not a lint code{hint} (codes: docs/lint.md)"
                path = ("services", caller, "upstreams", upstream, "lint", "suppress", code)
                out.append(
                    provenance.diagnostic(path, "W0001", message, key=True, severity="warning")
                )
    return out
