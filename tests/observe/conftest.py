"""Fixtures of the observability tests: real Prometheus servers (helpers that build bundles
and scrape targets live in observe_kit.py and scrape_target.py, importable by name)."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from prometheus_server import PrometheusServer, StartPrometheus, running_prometheus


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[StartPrometheus]:
    """Starts Prometheus servers (rule files, scrape targets); each stops by its PID after
    the test."""
    numbers = itertools.count()
    with contextlib.ExitStack() as stack:

        def start(rule_files: Sequence[Path], targets: Sequence[str]) -> PrometheusServer:
            root = tmp_path / f"prometheus-{next(numbers)}"
            return stack.enter_context(running_prometheus(root, rule_files, targets))

        yield start
