"""Shared retry budgets through a real redis-server, with real processes.

Four replicas of one caller call one loopback HTTP upstream that answers 503 to half of the
requests; each request may be retried once (on 5xx), within a token-bucket budget of 10% of
requests with a fill of 18 tokens. The upstream counts what it receives, so the retries
measured are the attempts it saw beyond the requests made.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from meshspec_runtime.policy.config import RetryBudgetConfig
from meshspec_runtime.shared.exchange import SharingState
from meshspec_runtime.shared.protocol import BudgetShape, ExchangeRequest, MemoryStore
from meshspec_runtime.shared.redis import RedisStore
from redis_server import RedisServer

WORKER = Path(__file__).with_name("budget_worker.py")
REPLICAS = 4
BUDGET = {"kind": "bucket", "ratio": 0.1, "cap": 18, "scope": "service"}
RATE = 120
"""Calls a second per replica: the four and the upstream share two cores with the suite."""


class Upstream:
    """Answers 503 to each request with probability 1/2 (seeded), 200 otherwise; counts."""

    def __init__(self) -> None:
        self.received = 0
        self._rng = random.Random(5)
        self._lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with upstream._lock:
                    upstream.received += 1
                    status = 503 if upstream._rng.random() < 0.5 else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Upstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with Upstream() as running:
        yield running


def run_replicas(
    tmp_path: Path,
    upstream: Upstream,
    redis_url: str | None,
    *,
    duration: float,
    during: Any = None,
) -> list[dict[str, Any]]:
    """Start the replicas, run ``during(started_at)`` meanwhile, return each one's report."""
    start_at = time.time() + 3.0  # every replica is up and sharing by then
    spec = {
        "redis": redis_url,
        "upstream_port": upstream.port,
        "start_at": start_at,
        "duration": duration,
        "rate": RATE,
        "budget": BUDGET if redis_url else {**BUDGET, "scope": "process"},
    }
    spec_file = tmp_path / f"worker-{redis_url is not None}.json"
    spec_file.write_text(json.dumps(spec))
    processes = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(spec_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(REPLICAS)
    ]
    try:
        if during is not None:
            during(start_at)
        reports = []
        for process in processes:
            out, err = process.communicate(timeout=duration + 60)
            assert process.returncode == 0, err
            reports.append(json.loads(out))
        return reports
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_four_replicas_share_one_budget_where_their_own_would_exceed_it(
    tmp_path: Path, redis_server: RedisServer, upstream: Upstream
) -> None:
    reports = run_replicas(tmp_path, upstream, redis_server.url, duration=6.0)
    requests = sum(r["requests"] for r in reports)
    retries = upstream.received - requests
    assert retries == sum(r["attempts"] - r["requests"] for r in reports)
    allowed = BUDGET["ratio"] * requests  # the budget's ratio of the requests
    assert abs(retries - allowed) <= 0.1 * allowed, (retries, allowed)
    assert all(r["shared_at_start"] for r in reports)
    assert all(not any(k.startswith("unexpected") for k in r["failed"]) for r in reports)

    upstream.received = 0  # the same four, each with a budget of its own
    alone = run_replicas(tmp_path, upstream, None, duration=6.0)
    requests_alone = sum(r["requests"] for r in alone)
    retries_alone = upstream.received - requests_alone
    assert retries_alone > 1.1 * BUDGET["ratio"] * requests_alone, (retries_alone, requests_alone)


def test_redis_killed_mid_traffic_fails_no_call_and_sharing_resumes(
    tmp_path: Path, redis_server: RedisServer, upstream: Upstream
) -> None:
    def outage(start_at: float) -> None:
        time.sleep(max(0.0, start_at - time.time()) + 2.0)
        redis_server.kill()
        time.sleep(2.0)
        redis_server.start()

    reports = run_replicas(tmp_path, upstream, redis_server.url, duration=7.0, during=outage)
    for report in reports:
        failed = report["failed"]
        # every call ended in an answer, or the upstream's 503 after its retries or with its
        # retry refused by the budget: none in an error
        assert set(failed) <= {"attempts_exhausted", "budget_exhausted"}, failed
        assert report["ok"] + sum(failed.values()) == report["requests"]
        assert report["shared_at_start"]
        # (the first budget_shared may come before the worker subscribed)
        names = [event["event"] for event in report["events"]]
        assert names[-2:] == ["budget_fell_back", "budget_shared"], names
        assert report["events"][-2]["members"] == REPLICAS  # fell back to a quarter
        assert report["fallbacks"] == 1
        assert report["slowest"] < 0.5  # no call waited on Redis
    requests = sum(r["requests"] for r in reports)
    retries = upstream.received - requests
    # the bucket's fill twice (Redis came back empty) plus 10% of the requests, at most
    assert retries <= 2 * BUDGET["cap"] + BUDGET["ratio"] * requests + REPLICAS


def test_the_redis_script_applies_the_memory_stores_rule(redis_server: RedisServer) -> None:
    """The same exchanges, through Lua in Redis and through MemoryStore: the same answers."""
    configs = [
        RetryBudgetConfig(kind="bucket", ratio=0.1, cap=20, threshold=2, scope="service"),
        RetryBudgetConfig(ratio=0.2, min_per_second=3, window=30, scope="service"),
    ]
    store = RedisStore(redis_server.url)
    memory = MemoryStore()
    try:
        for config in configs:
            shape = BudgetShape.of(config)
            for member, requests, retries, demand in [
                ("a", 0, 0, 0.0),
                ("b", 37, 5, 12.5),
                ("a", 250, 40, 0.25),
                ("c", 3, 9, 7.0),
            ]:
                request = ExchangeRequest(
                    f"t/{config.kind}", member, requests, retries, demand, shape, 5.0, 60.0
                )
                by_redis = store._send(request)
                by_memory = memory.exchange(request, time.monotonic())
                assert by_redis is not None
                assert by_redis.members == by_memory.members
                assert by_redis.balance == pytest.approx(by_memory.balance)
                assert by_redis.demand == pytest.approx(by_memory.demand)
                # (the two clocks differ by the moments between the calls: the decay too)
                assert by_redis.supply == pytest.approx(by_memory.supply, rel=0.02)
    finally:
        store.close()


def test_a_store_with_no_redis_behind_it_falls_back() -> None:
    """Nothing listens: the exchange fails, and after two failures the budget is local."""
    from support import free_port

    store = RedisStore(f"redis://127.0.0.1:{free_port()}", period=0.02, timeout=0.1)
    seen: list[tuple[SharingState, SharingState]] = []
    try:
        store.share(
            RetryBudgetConfig(scope="service"),
            mesh="m",
            caller="a",
            upstream="b",
            listener=lambda old, new, _now, _members: seen.append((old, new)),
        )
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        store.close()
    assert seen == [(SharingState.JOINING, SharingState.LOCAL)]
