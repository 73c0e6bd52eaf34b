"""A real ``consul agent -dev`` on free 127.0.0.1 ports, started and stopped by the tests.

The agent is a single-node server with an in-memory state store; everything it listens on is
bound to 127.0.0.1, gRPC is disabled, and the data dir and config file live in a temporary
folder. It is stopped by its PID (terminate, then kill if it does not exit in time).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import consul

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 30.0
DATACENTER = "dc1"


@dataclass(frozen=True)
class AgentPorts:
    http: int
    dns: int
    serf_lan: int
    serf_wan: int
    server: int


@dataclass(frozen=True)
class ConsulAgent:
    """What a test needs to talk to the running agent."""

    binary: Path
    ports: AgentPorts
    client: consul.Consul
    data_dir: Path
    log_file: Path

    @property
    def http_addr(self) -> str:
        return f"{LOOPBACK}:{self.ports.http}"

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``consul ARGS`` against this agent (``stdin`` its input); the caller checks the
        exit code."""
        env = {**os.environ, "CONSUL_HTTP_ADDR": self.http_addr}
        env.pop("CONSUL_HTTP_TOKEN", None)
        return subprocess.run(
            [str(self.binary), *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_file, lines)


def _port_free_for_tcp_and_udp(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                return False
    return True


def free_ports(count: int) -> list[int]:
    """Distinct ports free on 127.0.0.1 for both TCP and UDP (serf and DNS use both)."""
    chosen: list[int] = []
    while len(chosen) < count:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port: int = sock.getsockname()[1]
        if port not in chosen and _port_free_for_tcp_and_udp(port):
            chosen.append(port)
    return chosen


def agent_config(ports: AgentPorts, data_dir: Path) -> dict[str, object]:
    """The agent's JSON config: loopback only, our ports, no gRPC, no calls home."""
    return {
        "datacenter": DATACENTER,
        "node_name": "meshspec-test",
        "bind_addr": LOOPBACK,
        "advertise_addr": LOOPBACK,
        "client_addr": LOOPBACK,
        "data_dir": str(data_dir),
        "disable_update_check": True,
        "log_level": "info",
        "ports": {
            "http": ports.http,
            "https": -1,
            "dns": ports.dns,
            "serf_lan": ports.serf_lan,
            "serf_wan": ports.serf_wan,
            "server": ports.server,
            "grpc": -1,
            "grpc_tls": -1,
        },
        # DNS answers list passing instances only: warning and critical ones are left out.
        "dns_config": {"only_passing": True},
    }


class AgentStartError(RuntimeError):
    pass


def _wait_for_leader(process: subprocess.Popen[bytes], client: consul.Consul, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AgentStartError(
                f"consul agent exited with code {process.returncode} while starting; "
                f"log {log}:\n{_tail(log)}"
            )
        try:
            if client.status.leader():
                return
            last_error = "no leader elected yet"
        except (consul.ConsulException, OSError) as error:
            last_error = str(error)
        time.sleep(0.1)
    raise AgentStartError(
        f"consul agent had no leader after {START_TIMEOUT:.0f}s ({last_error}); "
        f"log {log}:\n{_tail(log)}"
    )


def _tail(log: Path, lines: int = 40) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the agent by its PID: terminate, wait, kill if it lingers."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


class RestartableAgent:
    """An agent a test can stop and start again on the same ports (``-dev``: its catalog is
    in memory, so services it should have after a restart come from ``-config-dir``)."""

    def __init__(self, binary: Path, workdir: Path, extra_args: Sequence[str] = ()) -> None:
        self.ports = AgentPorts(*free_ports(5))
        self._binary = binary
        self._workdir = workdir
        self._extra = list(extra_args)
        self._process: subprocess.Popen[bytes] | None = None
        self.agent: ConsulAgent | None = None

    def start(self) -> ConsulAgent:
        data_dir = self._workdir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        config_file = self._workdir / "agent.json"
        config_file.write_text(json.dumps(agent_config(self.ports, data_dir), indent=2))
        log_file = self._workdir / "agent.log"
        command = [str(self._binary), "agent", "-dev", "-config-file", str(config_file)]
        with log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [*command, *self._extra],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        client = consul.Consul(host=LOOPBACK, port=self.ports.http, dc=DATACENTER)
        _wait_for_leader(self._process, client, log_file)
        self.agent = ConsulAgent(self._binary, self.ports, client, data_dir, log_file)
        return self.agent

    def stop(self) -> None:
        if self._process is not None:
            stop(self._process)
            self._process = None


@contextmanager
def running_agent(
    binary: Path, workdir: Path, extra_args: Sequence[str] = ()
) -> Iterator[ConsulAgent]:
    """Start ``consul agent -dev`` in ``workdir``, yield it once it has a leader, stop it."""
    ports = AgentPorts(*free_ports(5))
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "agent.json"
    config_file.write_text(json.dumps(agent_config(ports, data_dir), indent=2))
    log_file = workdir / "agent.log"
    command = [str(binary), "agent", "-dev", "-config-file", str(config_file), *extra_args]
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        client = consul.Consul(host=LOOPBACK, port=ports.http, dc=DATACENTER)
        _wait_for_leader(process, client, log_file)
        yield ConsulAgent(binary, ports, client, data_dir, log_file)
    finally:
        stop(process)
