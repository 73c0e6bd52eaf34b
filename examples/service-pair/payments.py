"""One instance of the payments service: ``POST /charge`` answers ``{"charged": cents}``.

    python payments.py PORT [--broken]

``--broken`` makes every request answer 503. The deadline middleware reads the caller's
remaining time (``x-meshspec-timeout-ms``): a charge that cannot finish in time is refused
with 504 instead of being worked on for nobody.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from meshspec_runtime.deadline import time_left
from meshspec_runtime.integrations.wsgi import DeadlineMiddleware

WORK_SECONDS = 0.002


def charge_app(broken: bool) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if broken:
            status, body = "503 Service Unavailable", {"error": "this instance is broken"}
        elif environ["PATH_INFO"] != "/charge" or environ["REQUEST_METHOD"] != "POST":
            status, body = "404 Not Found", {"error": "POST /charge"}
        elif (left := time_left()) is not None and left < WORK_SECONDS:
            status, body = "504 Gateway Timeout", {"error": "no time left to charge"}
        else:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            order = json.loads(environ["wsgi.input"].read(length) or b"{}")
            status, body = "200 OK", {"charged": order.get("cents", 0)}
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json")])
        return [data]

    return app


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--broken", action="store_true", help="answer 503 to everything")
    args = parser.parse_args()
    app = DeadlineMiddleware(charge_app(args.broken))
    with make_server("127.0.0.1", args.port, app, handler_class=QuietHandler) as server:
        print(f"payments listening on 127.0.0.1:{args.port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
