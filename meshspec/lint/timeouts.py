"""W0201-W0203: timeouts that do not fit the calls they bound."""

from __future__ import annotations

from meshspec.lint.edges import EdgeFacts
from meshspec.lint.findings import Finding
from meshspec.spec.units import format_seconds


def timeout_findings(edges: list[EdgeFacts]) -> list[Finding]:
    out: list[Finding] = []
    below: dict[str, list[EdgeFacts]] = {}
    for edge in edges:
        below.setdefault(edge.caller, []).append(edge)
    for edge in edges:
        out.extend(_shorter_than_upstream(edge, below.get(edge.upstream, [])))
        out.extend(_attempts_do_not_fit(edge))
        out.extend(_below_latency(edge))
    return out


def _shorter_than_upstream(edge: EdgeFacts, onward: list[EdgeFacts]) -> list[Finding]:
    """W0201: the upstream may spend longer on its own slowest upstream call (tries, waits)
    than the caller waits for the whole call: the caller gives up, and the upstream's retries
    are work nobody will read."""
    if not onward:
        return []
    slowest = max(onward, key=lambda e: e.chain_time())
    need = slowest.chain_time() + (edge.upstream_latency or 0.0)
    if edge.policy.timeout >= need:
        return []
    latency = (
        f", plus {edge.upstream}'s own latency of {format_seconds(edge.upstream_latency)}"
        if edge.upstream_latency
        else ""
    )
    return [
        Finding(
            "W0201",
            edge.caller,
            edge.upstream,
            f"the call's timeout ({format_seconds(edge.policy.timeout)}) is shorter than the "
            f"{format_seconds(need)} {edge.upstream} may need for one request ({slowest.name} "
            f"may take {_chain(slowest)}{latency}): {edge.caller} gives up while "
            f"{edge.upstream} is still retrying",
            (("timeout",),),
        )
    ]


def _chain(edge: EdgeFacts) -> str:
    per_try = edge.policy.retry.per_try_timeout
    if per_try is None or edge.chain_time() == edge.policy.timeout:
        return f"{format_seconds(edge.policy.timeout)}, its timeout"
    waits = sum(edge.shortest_waits())
    backoff = f" + {format_seconds(waits)} backoff" if waits else ""
    return (
        f"{format_seconds(edge.chain_time())}, {edge.attempts} tries of "
        f"{format_seconds(per_try)}{backoff}"
    )


def _attempts_do_not_fit(edge: EdgeFacts) -> list[Finding]:
    """W0202: when every try times out, the attempts and the shortest backoff the jitter
    allows take longer than the overall timeout: the last attempts are cut short or never
    start, so the configured attempts are not what the edge does."""
    per_try = edge.policy.retry.per_try_timeout
    attempts = edge.attempts
    if per_try is None or attempts < 2:
        return []
    waits = edge.shortest_waits()
    total = per_try * attempts + sum(waits)
    timeout = edge.policy.timeout
    if total <= timeout * (1 + 1e-9):
        return []
    started, clock = 1, per_try
    for wait in waits:
        clock += wait
        if clock >= timeout:
            break
        started += 1
        clock += per_try
    backoff = f" plus at least {format_seconds(sum(waits))} of backoff" if sum(waits) else ""
    fate = (
        f"only {started} of {attempts} attempts can start"
        if started < attempts
        else "the last attempt is cut short"
    )
    return [
        Finding(
            "W0202",
            edge.caller,
            edge.upstream,
            f"{attempts} attempts x per_try_timeout {format_seconds(per_try)}{backoff} take "
            f"{format_seconds(total)}, more than the call's timeout "
            f"({format_seconds(timeout)}): when tries time out, {fate}",
            (("retry", "attempts"), ("retry", "per_try_timeout"), ("timeout",)),
        )
    ]


def _below_latency(edge: EdgeFacts) -> list[Finding]:
    """W0203: a try shorter than the upstream's declared typical latency times out on a
    typical request, and its retries only add load."""
    latency = edge.upstream_latency
    per_try = edge.policy.retry.per_try_timeout
    limit = per_try if per_try is not None else edge.policy.timeout
    if latency is None or limit >= latency:
        return []
    what = "per_try_timeout" if per_try is not None else "timeout"
    return [
        Finding(
            "W0203",
            edge.caller,
            edge.upstream,
            f"{what} ({format_seconds(limit)}) is below {edge.upstream}'s typical latency "
            f"({format_seconds(latency)}, services.{edge.upstream}.lint.latency): a typical "
            "request times out",
            (("retry", "per_try_timeout"),) if per_try is not None else (("timeout",),),
        )
    ]
