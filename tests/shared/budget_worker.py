"""One replica of service ``caller``: calls upstream ``server`` through a Mesh whose retry
budget is shared through Redis (or not), and prints what it saw as JSON.

Run by tests/shared/test_shared_redis.py as a separate process::

    python budget_worker.py SPEC.json

SPEC: ``redis`` (URL or null: scope process), ``upstream_port``, ``start_at`` (time.time()
to start calling at), ``duration``, ``rate`` (calls a second), ``budget`` (the retry budget).
"""

from __future__ import annotations

import http.client
import json
import sys
import time
from pathlib import Path
from typing import Any

from meshspec_runtime import Mesh
from meshspec_runtime.bundle import Endpoint, ServicePolicies, Upstream
from meshspec_runtime.drivers.classify import CallFailed
from meshspec_runtime.events import BudgetSharing
from meshspec_runtime.policy.config import (
    BackoffConfig,
    RetryBudgetConfig,
    RetryConfig,
    UpstreamPolicy,
)
from meshspec_runtime.shared.redis import RedisStore

SHARED_WAIT = 10.0


def main() -> None:
    spec: dict[str, Any] = json.loads(Path(sys.argv[1]).read_text())
    policy = UpstreamPolicy(
        timeout=2.0,
        retry=RetryConfig(
            attempts=2,
            backoff=BackoffConfig(base=0.001, max=0.001, jitter="none"),
            on=("5xx",),
            budget=RetryBudgetConfig.model_validate(spec["budget"]),
        ),
    )
    endpoint = Endpoint(id="server-0", address="127.0.0.1", port=spec["upstream_port"])
    service = ServicePolicies(
        name="caller",
        port=8080,
        upstreams={"server": Upstream(service="server", endpoints=(endpoint,), policy=policy)},
    )
    store = RedisStore(spec["redis"], period=0.05) if spec["redis"] else None
    events: list[dict[str, Any]] = []
    mesh = Mesh(service, mesh="budgets", version="test", shared_budgets=store)
    mesh.on(
        BudgetSharing,
        lambda event: events.append(
            {"event": event.name, "members": event.members, "at": time.time()}
        ),
    )
    budget = mesh.upstream("server").policies.budget
    view = getattr(budget, "view", None)
    if view is not None:  # start calling once the budget is shared, as a running replica is
        deadline = time.monotonic() + SHARED_WAIT
        while not view.sharing and time.monotonic() < deadline:
            time.sleep(0.01)
    shared_at_start = view is not None and view.sharing
    connection = http.client.HTTPConnection("127.0.0.1", spec["upstream_port"], timeout=2.0)
    attempts = 0

    def attempt(_endpoint: Endpoint, timeout: float) -> http.client.HTTPResponse:
        nonlocal attempts, connection
        attempts += 1
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            response.read()
            return response
        except (OSError, http.client.HTTPException):
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", spec["upstream_port"], 2.0)
            raise

    time.sleep(max(0.0, spec["start_at"] - time.time()))
    start = time.monotonic()
    requests = ok = 0
    failed: dict[str, int] = {}
    slowest = 0.0
    interval = 1.0 / spec["rate"]
    while time.monotonic() - start < spec["duration"]:
        due = start + requests * interval
        time.sleep(max(0.0, due - time.monotonic()))
        began = time.monotonic()
        requests += 1
        try:
            response = mesh.call("server", attempt)
            if response.status < 400:
                ok += 1
            else:
                failed[f"status {response.status}"] = failed.get(f"status {response.status}", 0) + 1
        except CallFailed as error:
            failed[str(error.reason)] = failed.get(str(error.reason), 0) + 1
        except Exception as error:  # anything else is a failure the budget caused
            failed[f"unexpected {type(error).__name__}: {error}"] = 1
        slowest = max(slowest, time.monotonic() - began)
    mesh.close()
    print(
        json.dumps(
            {
                "requests": requests,
                "attempts": attempts,
                "ok": ok,
                "failed": failed,
                "slowest": slowest,
                "events": events,
                "fallbacks": view.fallbacks if view is not None else 0,
                "shared_at_start": shared_at_start,
            }
        )
    )


if __name__ == "__main__":
    main()
