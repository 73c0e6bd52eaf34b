"""Run the pair: start both payments instances (the second broken), charge 20 orders, stop.

    python demo.py BUNDLE

The instances listen where the bundle says (``meshspec compile mesh.yaml -o BUNDLE``).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from meshspec_runtime import Mesh

HERE = Path(__file__).resolve().parent


def wait_for_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"payments on port {port} did not start")


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    bundle = sys.argv[1]
    with Mesh.open(bundle, service="storefront") as mesh:
        ports = [endpoint.port for endpoint in mesh.upstream("payments").endpoints]
    instances = [
        subprocess.Popen(
            [sys.executable, str(HERE / "payments.py"), str(port)]
            + (["--broken"] if index == 1 else [])
        )
        for index, port in enumerate(ports)
    ]
    try:
        for port in ports:
            wait_for_port(port, time.monotonic() + 10)
        storefront = [sys.executable, str(HERE / "storefront.py"), bundle]
        code = subprocess.run(storefront, check=False).returncode
    finally:
        for instance in instances:
            instance.terminate()
            instance.wait(timeout=10)
    sys.exit(code)


if __name__ == "__main__":
    main()
