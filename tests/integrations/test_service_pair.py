"""examples/service-pair runs as the README shows: two real processes on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from support import REPO, free_port

from meshspec.cli import main

PAIR = REPO / "examples" / "service-pair"


def test_the_pair_charges_every_order_and_ejects_the_broken_instance(tmp_path: Path) -> None:
    healthy, broken = free_port(), free_port()
    out = tmp_path / "pair"
    compiled = CliRunner().invoke(
        main,
        [
            "compile",
            str(PAIR / "mesh.yaml"),
            "-o",
            str(out),
            "--set",
            f"services.payments.instances[0].port={healthy}",
            "--set",
            f"services.payments.instances[1].port={broken}",
        ],
    )
    assert compiled.exit_code == 0, compiled.output
    demo = subprocess.run(
        [sys.executable, str(PAIR / "demo.py"), str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "20 of 20 orders charged" in demo.stdout
    assert "ejected by outlier detection: payments-1" in demo.stdout
    # the instances were stopped: nothing listens on their ports any more
    for port in (healthy, broken):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
