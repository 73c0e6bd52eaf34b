"""The Prometheus collector: counts read at scrape time, names from observe.names, no writes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mesh_kit import compile_mesh
from meshspec_runtime import CallFailed, FailReason, Mesh
from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.observe import names
from meshspec_runtime.policy.breaker import BreakerState
from meshspec_runtime.policy.call import FOLD_AT
from prometheus_client import CollectorRegistry, generate_latest

POLICY = {
    "timeout": "2s",
    "retry": {
        "attempts": 2,
        "backoff": {"base": "1ms", "max": "1ms"},
        "on": ["5xx"],
        "budget": {"ratio": "50%", "min_per_second": "100/s", "window": "10s"},
    },
    "circuit_breaker": {"mode": "consecutive", "consecutive_failures": 4, "open_for": "50ms"},
    "outlier_detection": {"consecutive_failures": 100, "base_ejection": "1s"},
    "load_balancer": {"strategy": "round_robin"},
}


class Answer:
    def __init__(self, status: int) -> None:
        self.status_code = status


@pytest.fixture
def metered(tmp_path: Path) -> Iterator[tuple[Mesh, CollectorRegistry]]:
    registry = CollectorRegistry()
    bundle = compile_mesh(tmp_path, {"payments": [9001, 9002]}, policy=POLICY)
    with Mesh.open(bundle, service="checkout", metrics=registry) as mesh:
        yield mesh, registry


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, {"caller": "checkout", "upstream": "payments", **labels})


def answering(*statuses: int):  # type: ignore[no-untyped-def]
    feed = iter(statuses)
    return lambda endpoint, timeout: Answer(next(feed))


def test_requests_attempts_retries_and_refusals_are_counted(
    metered: tuple[Mesh, CollectorRegistry],
) -> None:
    mesh, registry = metered
    payments = mesh.upstream("payments")
    for _ in range(3):
        payments.call(answering(200))
    payments.call(answering(503, 200))  # a retry that worked
    with pytest.raises(CallFailed):
        payments.call(answering(503, 502))  # attempts exhausted
    assert sample(registry, "meshspec_upstream_requests_total", outcome="success") == 4
    assert sample(registry, "meshspec_upstream_requests_total", outcome="error") == 1
    assert sample(registry, "meshspec_upstream_attempts_total", outcome="success") == 4
    assert sample(registry, "meshspec_upstream_attempts_total", outcome="error") == 3
    assert sample(registry, "meshspec_upstream_retries_total") == 2
    assert sample(registry, "meshspec_upstream_retries_refused_total", reason="attempts") == 1
    assert sample(registry, "meshspec_upstream_retries_refused_total", reason="budget") == 0
    assert sample(registry, "meshspec_retry_budget_exhausted_total") == 0
    assert sample(registry, "meshspec_upstream_request_duration_seconds_count") == 5
    assert sample(registry, "meshspec_upstream_endpoints") == 2
    assert (
        registry.get_sample_value(
            "meshspec_bundle_info", {"caller": "checkout", "mesh": "test", "version": mesh.version}
        )
        == 1
    )


def test_connect_failures_and_timeouts_have_their_own_outcome(
    metered: tuple[Mesh, CollectorRegistry],
) -> None:
    mesh, registry = metered

    def refused(endpoint: Endpoint, timeout: float) -> Answer:
        raise ConnectionRefusedError

    with pytest.raises(CallFailed):  # connect-failure is not in this edge's retry.on
        mesh.upstream("payments").call(refused)
    assert sample(registry, "meshspec_upstream_requests_total", outcome="connect_failure") == 1
    assert sample(registry, "meshspec_upstream_attempts_total", outcome="connect_failure") == 1


def test_the_breaker_is_reported_and_a_scrape_does_not_move_it(
    metered: tuple[Mesh, CollectorRegistry],
) -> None:
    mesh, registry = metered
    payments = mesh.upstream("payments")
    for _ in range(2):
        with pytest.raises(CallFailed):
            payments.call(answering(503, 503))  # 4 failed attempts in a row: open
    with pytest.raises(CallFailed) as refused:
        payments.call(answering(200))
    assert refused.value.reason is FailReason.BREAKER_OPEN
    time.sleep(0.08)  # open_for elapsed: state(now) would move it to half-open
    breaker = payments.policies.breaker
    assert breaker is not None
    assert sample(registry, "meshspec_circuit_breaker_state", state="open") == 1
    assert sample(registry, "meshspec_circuit_breaker_state", state="half_open") == 0
    assert breaker.current_state is BreakerState.OPEN  # the scrape left it alone
    assert sample(registry, "meshspec_circuit_breaker_transitions_total", to="open") == 1
    assert sample(registry, "meshspec_circuit_breaker_rejections_total") == 1
    assert sample(registry, "meshspec_upstream_requests_total", outcome="rejected") == 1


def test_every_exported_family_is_in_the_names_table(
    metered: tuple[Mesh, CollectorRegistry],
) -> None:
    mesh, registry = metered
    mesh.upstream("payments").call(answering(200))
    exported = {m.name for m in registry.collect()}
    documented = {metric.family for metric in names.METRICS}
    assert exported <= documented
    text = generate_latest(registry).decode()
    assert 'meshspec_upstream_requests_total{caller="checkout",outcome="success"' in text


def test_close_stops_exporting(metered: tuple[Mesh, CollectorRegistry]) -> None:
    mesh, registry = metered
    mesh.close()
    assert list(registry.collect()) == []


def test_no_call_is_lost_across_threads_and_folds(
    metered: tuple[Mesh, CollectorRegistry],
) -> None:
    mesh, registry = metered
    payments = mesh.upstream("payments")
    per_thread = FOLD_AT // 4  # 8 threads: folds by the calling threads, the folder, the scrape

    def work() -> None:
        ok = answering(*([200] * per_thread))
        for _ in range(per_thread):
            payments.call(ok)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sample(registry, "meshspec_upstream_requests_total", outcome="success") == 8 * per_thread
    assert len(payments.policies.call_log.pending) == 0  # type: ignore[union-attr]


def test_a_background_thread_folds_between_scrapes_and_stops_with_the_mesh(
    metered: tuple[Mesh, CollectorRegistry],
) -> None:
    mesh, _ = metered
    payments = mesh.upstream("payments")
    for _ in range(100):
        payments.call(answering(200))
    log = payments.policies.call_log
    assert log is not None
    deadline = time.monotonic() + 5
    while log.pending and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not log.pending  # folded without a scrape
    folders = {t for t in threading.enumerate() if t.name == "meshspec-metrics"}
    mesh.close()
    stopped = folders - {t for t in threading.enumerate() if t.name == "meshspec-metrics"}
    assert len(stopped) == 1  # this mesh's folder, and only it


def test_a_retry_stopped_above_the_failure_rate_is_counted_as_refused(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    policy = {
        **POLICY,
        "retry": {
            **POLICY["retry"],  # type: ignore[dict-item]
            "stop_above": {"failure_rate": "10%", "window": "10s", "minimum_requests": 1},
        },
    }
    bundle = compile_mesh(tmp_path, {"payments": [9001, 9002]}, policy=policy)
    with Mesh.open(bundle, service="checkout", metrics=registry) as mesh:
        payments = mesh.upstream("payments")
        reasons = []
        for _ in range(3):
            with pytest.raises(CallFailed) as failed:
                payments.call(answering(503, 503))
            reasons.append(failed.value.reason)
        stopped = reasons.count(FailReason.RETRIES_STOPPED)
        assert stopped >= 1  # the first call's failed first try already puts it above 10%
        assert sample(registry, "meshspec_upstream_retries_refused_total", reason="stopped") == (
            stopped
        )
