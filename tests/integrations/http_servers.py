"""Loopback HTTP servers for the client integration tests.

A :class:`LoopbackServer` listens on 127.0.0.1 on a free port, serves each connection in its
own thread (HTTP/1.1, keep-alive) and behaves as told, for every request:

- ``"ok"``: 200 with body ``ok``;
- an ``int`` N: status N with a short body (``503`` is an overloaded instance);
- ``"hang"``: reads the request and never answers (until the server stops);
- ``"slow"``: answers 200 after ``delay`` seconds;
- ``"reset"``: reads the request head, then closes the socket with ``SO_LINGER`` 0, so the
  client sees a TCP reset instead of an answer.

It records what it saw (method, path, headers, body: the timeout header the client propagated
is ``request.timeout_header``) and counts the connections it accepted and those still open, so
a test can tell retries, resent bodies and leaked connections apart. The behaviour can be
changed while the server runs.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

from meshspec_runtime.deadline import TIMEOUT_HEADER

Behaviour = Literal["ok", "hang", "slow", "reset"] | int


@dataclass(frozen=True)
class SeenRequest:
    """One request as the server read it."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def timeout_header(self) -> str | None:
        return self.headers.get(TIMEOUT_HEADER)

    @property
    def host(self) -> str | None:
        return self.headers.get("host")


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 (see the module docstring); use it as a context
    manager, or :meth:`start` and :meth:`stop` it."""

    def __init__(self, behaviour: Behaviour = "ok", *, delay: float = 0.2) -> None:
        self.behaviour: Behaviour = behaviour
        self.delay = delay
        self._lock = threading.Lock()
        self._seen: list[SeenRequest] = []
        self._open = 0
        self._accepted = 0
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _handler_for(self))
        self.port: int = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None

    # -- what the server saw ----------------------------------------------------------------

    @property
    def requests(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._seen)

    @property
    def count(self) -> int:
        """Requests received (answered or not)."""
        with self._lock:
            return len(self._seen)

    @property
    def bodies(self) -> list[bytes]:
        return [seen.body for seen in self.requests]

    @property
    def timeout_headers(self) -> list[str | None]:
        return [seen.timeout_header for seen in self.requests]

    @property
    def open_connections(self) -> int:
        """Connections accepted and not yet closed by either side."""
        with self._lock:
            return self._open

    @property
    def connections_accepted(self) -> int:
        with self._lock:
            return self._accepted

    def wait_open_connections(self, at_most: int, timeout: float = 2.0) -> int:
        """Wait until at most ``at_most`` connections are open (the server notices a client's
        close a moment later); return how many are open then."""
        deadline = time.monotonic() + timeout
        while self.open_connections > at_most and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.open_connections

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> LoopbackServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"loopback-http-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, release hung handlers and close the listening socket."""
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- used by the handler --------------------------------------------------------------------

    def _connected(self) -> None:
        with self._lock:
            self._open += 1
            self._accepted += 1

    def _disconnected(self) -> None:
        with self._lock:
            self._open -= 1

    def _saw(self, seen: SeenRequest) -> None:
        with self._lock:
            self._seen.append(seen)


@contextmanager
def serving(*behaviours: Behaviour, delay: float = 0.2) -> Iterator[list[LoopbackServer]]:
    """Start one server per behaviour; stop them all at the end."""
    with ExitStack() as stack:
        yield [stack.enter_context(LoopbackServer(b, delay=delay)) for b in behaviours]


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a client's idle keep-alive connection must not block stop()

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that give up (timeouts, resets) are the point of these servers: stay quiet."""


def _handler_for(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        owner = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: LoopbackServer

    def setup(self) -> None:
        super().setup()
        self.owner._connected()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.owner._disconnected()

    def log_message(self, format: str, *args: object) -> None:
        """Silent: the tests read what the server saw from its records."""

    def _serve(self) -> None:
        behaviour = self.owner.behaviour
        headers = {name.lower(): value for name, value in self.headers.items()}
        if behaviour == "reset":
            self.owner._saw(SeenRequest(self.command, self.path, headers, b""))
            self._reset()
            return
        body = self._read_body()
        self.owner._saw(SeenRequest(self.command, self.path, headers, body))
        if behaviour == "hang":
            self.owner._stopping.wait()
            self.close_connection = True
            return
        if behaviour == "slow" and self.owner._stopping.wait(self.owner.delay):
            self.close_connection = True  # stopped while waiting
            return
        status = behaviour if isinstance(behaviour, int) else 200
        self._answer(status, b"ok" if status == 200 else f"status {status}".encode())

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _reset(self) -> None:
        """Abort the connection: with SO_LINGER (on, 0 s) close() sends RST, not FIN."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True
