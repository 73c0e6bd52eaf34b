"""The facts lint reasons about, per edge: the resolved policy and what the spec declares
about the edge and its upstream (traffic, idempotency, latency)."""

from __future__ import annotations

from dataclasses import dataclass

from meshspec_runtime.policy.config import Jitter, UpstreamPolicy

from meshspec.spec.models import EdgeLintSpec, MeshSpec
from meshspec.spec.resolve import Resolver


@dataclass(frozen=True, slots=True)
class EdgeFacts:
    caller: str
    upstream: str
    policy: UpstreamPolicy
    caller_instances: int
    traffic: float | None
    """Calls a second over all the caller's instances, when the spec declares it."""
    idempotent: bool | None
    upstream_latency: float | None
    """The upstream's declared typical latency, seconds."""

    @property
    def name(self) -> str:
        return f"{self.caller} -> {self.upstream}"

    @property
    def attempts(self) -> int:
        """Tries per call when every one fails with a retryable outcome (hedges aside)."""
        retry = self.policy.retry
        return retry.attempts if retry.on else 1

    @property
    def hedges(self) -> int:
        """Hedges one call may add: every hedge starts when its attempts fail non-fatally or
        are slow, so a failing upstream gets them all."""
        hedge = self.policy.hedge
        return hedge.max_attempts - 1 if hedge is not None else 0

    @property
    def worst_attempts(self) -> int:
        """Attempts per call when every one fails: the hedged ones, then the retries."""
        return self.attempts + self.hedges

    def multiplier(self) -> tuple[float, bool]:
        """(worst-case attempts per call, whether the retry budget is what bounds it).

        Each caller instance's budget grants at most ``ratio`` of its requests plus
        ``min_per_second`` retries a second (meshspec_runtime.policy.budget), so per call at
        most ``ratio + min_per_second / calls_per_instance`` retries; the reserve term is
        known only when the edge declares its traffic, or vanishes when it is 0.
        """
        attempts = self.worst_attempts  # hedges withdraw from the budget as retries do
        budget = self.policy.retry.budget
        if budget is None or attempts == 1:
            return float(attempts), False
        if budget.min_per_second == 0:
            cap = 1 + budget.ratio
        elif self.traffic:
            cap = 1 + budget.ratio + budget.min_per_second * self.caller_instances / self.traffic
        else:
            return float(attempts), False
        return (cap, True) if cap < attempts else (float(attempts), False)

    def shortest_waits(self) -> list[float]:
        """The shortest backoff before each retry that the jitter allows, in order."""
        backoff = self.policy.retry.backoff
        waits: list[float] = []
        for retry in range(1, self.attempts):
            ceiling = min(backoff.max, backoff.base * backoff.multiplier ** (retry - 1))
            if backoff.jitter is Jitter.FULL:
                wait = 0.0
            elif backoff.jitter is Jitter.EQUAL:
                wait = ceiling / 2
            elif backoff.jitter is Jitter.DECORRELATED:
                wait = min(backoff.max, backoff.base)
            else:
                wait = ceiling
            waits.append(wait)
        return waits

    def chain_time(self) -> float:
        """The longest one call on this edge may take: its tries and waits, within its
        timeout (a try without a per-try timeout may use all that is left)."""
        per_try = self.policy.retry.per_try_timeout
        if per_try is None:
            return self.policy.timeout
        tries = per_try * self.attempts + sum(self.shortest_waits())
        return min(self.policy.timeout, tries)


def edge_facts(spec: MeshSpec) -> list[EdgeFacts]:
    """Every edge of ``spec``, in spec order."""
    resolver = Resolver.of(spec)
    out: list[EdgeFacts] = []
    for caller, service in spec.services.items():
        for upstream, edge in service.upstreams.items():
            lint = edge.lint if edge is not None and edge.lint is not None else EdgeLintSpec()
            upstream_lint = spec.services[upstream].lint
            out.append(
                EdgeFacts(
                    caller=caller,
                    upstream=upstream,
                    policy=resolver.policy(caller, upstream),
                    caller_instances=len(service.instances),
                    traffic=lint.traffic,
                    idempotent=lint.idempotent,
                    upstream_latency=upstream_lint.latency if upstream_lint else None,
                )
            )
    return out
