"""End to end: a loopback service calls its upstream through ``Mesh`` (metrics in a
prometheus_client registry, exposed over HTTP), a real Prometheus scrapes it with the bundle's
rules, and the error-ratio alert fires within its for: once the upstream fails; a healthy run
fires nothing."""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from meshspec_runtime import Mesh
from observe_kit import (
    ALERT_AFTER,
    CALLER,
    FAILING,
    MARGIN,
    OBJECTIVE,
    alerts_of,
    compile_bundle,
    expected_labels,
    rules_file,
    wait_for_ratio,
    watch_until_firing,
)
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_server import PrometheusServer, StartPrometheus
from support import free_port

CALLS_PER_SECOND = 50


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler], port: int = 0) -> Iterator[int]:
    """``handler`` on 127.0.0.1 (``port``, or a free one) until the block ends; yields the port."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


def upstream_handler(failing: threading.Event) -> type[BaseHTTPRequestHandler]:
    class Upstream(Quiet):
        def do_GET(self) -> None:
            self.answer(500 if failing.is_set() else 200)

    return Upstream


def checkout_handler(client: httpx.Client) -> type[BaseHTTPRequestHandler]:
    """The service under test: each request calls the upstream through the mesh."""

    class Checkout(Quiet):
        def do_GET(self) -> None:
            try:
                status = client.get("/pay").status_code
            except Exception:  # the mesh refused or the call failed: still an answer here
                status = 502
            self.answer(200 if status == 200 else 502)

    return Checkout


@contextlib.contextmanager
def traffic(port: int) -> Iterator[None]:
    """Requests to the service at CALLS_PER_SECOND from a background thread."""
    stop = threading.Event()

    def send() -> None:
        while not stop.is_set():
            with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/checkout", timeout=5).close()
            stop.wait(1 / CALLS_PER_SECOND)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


@contextlib.contextmanager
def running_checkout(
    start_prometheus: StartPrometheus, folder: Path, failing: threading.Event
) -> Iterator[PrometheusServer]:
    upstream_port = free_port()
    bundle = compile_bundle(folder, {FAILING: upstream_port})
    registry = CollectorRegistry()
    metrics_port = free_port()
    with (
        serving(upstream_handler(failing), upstream_port),
        Mesh.open(bundle, service=CALLER, metrics=registry) as mesh,
    ):
        client = mesh.httpx_client(FAILING)
        metrics_server, metrics_thread = start_http_server(
            metrics_port, addr="127.0.0.1", registry=registry
        )
        try:
            with serving(checkout_handler(client)) as checkout_port, traffic(checkout_port):
                yield start_prometheus([rules_file(bundle)], [f"127.0.0.1:{metrics_port}"])
        finally:
            metrics_server.shutdown()
            metrics_server.server_close()
            metrics_thread.join(timeout=5)


def test_the_alert_fires_within_its_for_once_the_upstream_fails(
    start_prometheus: StartPrometheus, tmp_path: Path
) -> None:
    failing = threading.Event()
    with running_checkout(start_prometheus, tmp_path, failing) as server:
        assert wait_for_ratio(server, FAILING, within=MARGIN) == 0.0  # healthy, and scraped
        failing.set()
        watch = watch_until_firing(server, FAILING, within=ALERT_AFTER + MARGIN)
        assert watch.firing_at is not None, f"no firing alert: {server.alerts()}"
        assert watch.first_pending is not None
        assert watch.firing_at - watch.first_pending >= ALERT_AFTER - 0.2
        assert watch.firing["labels"] == expected_labels(FAILING)
        assert float(watch.firing["value"]) > 1 - OBJECTIVE


def test_a_healthy_run_fires_nothing(start_prometheus: StartPrometheus, tmp_path: Path) -> None:
    with running_checkout(start_prometheus, tmp_path, threading.Event()) as server:
        assert wait_for_ratio(server, FAILING, within=MARGIN) == 0.0
        time.sleep(ALERT_AFTER + 3)
        assert wait_for_ratio(server, FAILING, within=1) == 0.0
        assert alerts_of(server, FAILING) == []
        assert server.alerts() == []
