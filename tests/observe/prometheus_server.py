"""A real Prometheus server for the tests: loopback only, a temp data dir, 1s scrapes and rule
evaluations, stopped by its PID. Skips when the binary is missing (fails under
MESHSPEC_REQUIRE_SERVICES=1); tools/install-system-deps.sh extracts it from Debian's package."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import free_port, require_binary

TOOLS_DIRS = [Path(os.environ.get("MESHSPEC_TOOLS", Path.home() / ".cache/meshspec-tools")) / "bin"]
INTERVAL = "1s"
"""Scrape and rule-evaluation interval."""
READY_WITHIN = 30.0


@dataclass(frozen=True, slots=True)
class PrometheusServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=5) as response:
            return json.load(response)

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts, as /api/v1/alerts lists them."""
        body = self.get("/api/v1/alerts")
        assert body["status"] == "success", body
        alerts: list[dict[str, Any]] = body["data"]["alerts"]
        return alerts

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = self.get("/api/v1/query", query=expr)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def rule_health(self) -> list[tuple[str, str, str]]:
        """(rule name, health, last error) of every loaded rule."""
        groups = self.get("/api/v1/rules")["data"]["groups"]
        return [
            (rule["name"], rule["health"], rule.get("lastError", ""))
            for group in groups
            for rule in group["rules"]
        ]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def config(rule_files: Sequence[Path], targets: Sequence[str]) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": "meshspec",
                "scrape_timeout": INTERVAL,
                "static_configs": [{"targets": list(targets)}],
            }
        ],
    }


@contextlib.contextmanager
def running_prometheus(
    root: Path, rule_files: Sequence[Path], targets: Sequence[str]
) -> Iterator[PrometheusServer]:
    """Prometheus on a free 127.0.0.1 port, loading ``rule_files`` and scraping ``targets``
    (``host:port``, loopback), until the block ends."""
    binary = require_binary("prometheus", extra_dirs=TOOLS_DIRS)
    root.mkdir(parents=True, exist_ok=True)
    config_file = root / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config(rule_files, targets)))
    port = free_port()
    log = root / "prometheus.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                str(binary),
                f"--config.file={config_file}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=root,
        )
    server = PrometheusServer(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_until_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_ready(server: PrometheusServer) -> None:
    deadline = time.monotonic() + READY_WITHIN
    while True:
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if server.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"prometheus did not become ready: {server.log_text()}")
        time.sleep(0.1)


StartPrometheus = Callable[[Sequence[Path], Sequence[str]], PrometheusServer]
"""What the ``start_prometheus`` fixture gives: rule files and scrape targets -> a server."""
