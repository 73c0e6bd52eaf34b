"""Register this instance with the local Consul agent, keep its TTL check passing, deregister
on close (extra ``meshspec-runtime[consul]``).

The definition is the bundle's own (``consul/services/<service>.json``, written by the
compiler in the agent's config-file spelling), respelt the way the HTTP API spells it, plus a
TTL check the runtime keeps passing while ``healthy()`` says so. A thread keeps the
registration true: a registration that failed, or half failed (the service is in but the
heartbeat was refused), or that the agent lost (restarted), is made again with backoff.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meshspec_runtime.discovery.consul import client as consul_client

if TYPE_CHECKING:
    from meshspec_runtime.mesh import Mesh

JsonObject = dict[str, Any]

HEARTBEAT_PREFIX = "meshspec-heartbeat:"
"""CheckID prefix of the TTL check the runtime keeps passing."""
DEFAULT_TTL = 15.0
RETRY_BASE = 0.5
RETRY_CAP = 15.0

# The config-file spelling (what the compiler writes) -> the HTTP API's (what register takes).
_CHECK_API_NAMES = {
    "success_before_passing": "SuccessBeforePassing",
    "failures_before_critical": "FailuresBeforeCritical",
    "failures_before_warning": "FailuresBeforeWarning",
    "grpc_use_tls": "GRPCUseTLS",
    "id": "CheckID",
}


class RegistrationError(ValueError):
    """The bundle's definitions do not say which instance this process is."""


@dataclass(frozen=True)
class RegisterAs:
    """Which of the bundle's instances this process is, and how to keep it registered.

    Say ``instance_id`` (the spec's instance id), or ``address`` and/or ``port``; a service
    with one instance needs neither. ``consul``: the local agent (by default the discovery's
    Consul address, else ``http://127.0.0.1:8500``). ``healthy()``: the heartbeat reports
    critical while it returns False. ``ttl``: the heartbeat check's TTL in seconds; it is
    renewed every third of it.
    """

    instance_id: str | None = None
    address: str | None = None
    port: int | None = None
    consul: str | None = None
    token: str | None = None
    ttl: float = DEFAULT_TTL
    healthy: Callable[[], bool] | None = None


def choose_instance(definitions: Sequence[JsonObject], want: RegisterAs, where: str) -> JsonObject:
    """The one definition ``want`` names; RegistrationError saying what to name otherwise."""
    matching = [
        d
        for d in definitions
        if (want.instance_id is None or d.get("ID") == want.instance_id)
        and (want.address is None or d.get("Address") == want.address)
        and (want.port is None or d.get("Port") == want.port)
    ]
    if len(matching) == 1:
        return matching[0]
    listed = ", ".join(f"{d.get('ID')} ({d.get('Address')}:{d.get('Port')})" for d in definitions)
    if not matching:
        raise RegistrationError(f"{where}: no instance matches {want}; the bundle lists {listed}")
    raise RegistrationError(
        f"{where}: {len(matching)} instances match; say which with "
        f"register=RegisterAs(instance_id=...): {listed}"
    )


def read_definitions(content: bytes, where: str) -> list[JsonObject]:
    try:
        document = json.loads(content)
    except ValueError as error:
        raise RegistrationError(f"{where}: not JSON: {error}") from None
    services = document.get("services") if isinstance(document, dict) else None
    if not isinstance(services, list) or not all(isinstance(s, dict) for s in services):
        raise RegistrationError(f"{where}: no 'services' list of service definitions")
    return services


def api_registration(definition: JsonObject, heartbeat_ttl: float) -> JsonObject:
    """The keyword arguments of py-consul's ``agent.service.register`` for ``definition``,
    its checks respelt for the API, with the runtime's heartbeat TTL check last."""
    checks = [
        {_CHECK_API_NAMES.get(key, key): value for key, value in check.items()}
        for check in definition.get("Checks", [])
    ]
    instance = definition["ID"]
    checks.append(
        {
            "CheckID": HEARTBEAT_PREFIX + instance,
            "Name": f"meshspec runtime heartbeat ({instance})",
            "TTL": f"{heartbeat_ttl:g}s",
        }
    )
    return {
        "name": definition["Name"],
        "service_id": instance,
        "address": definition.get("Address"),
        "port": definition.get("Port"),
        "tags": definition.get("Tags"),
        "meta": definition.get("Meta"),
        "weights": definition.get("Weights"),
        "check": checks[0],
        "extra_checks": checks[1:],
    }


Report = Callable[[str, str | None], None]
"""``report(kind, reason)``: kind is ``registered``, ``failed`` or ``deregistered``."""


class Registrar:
    """Keeps one instance registered from a thread; ``close`` deregisters it."""

    def __init__(
        self,
        address: str,
        definition: JsonObject,
        want: RegisterAs,
        report: Report,
        rng: random.Random | None = None,
    ) -> None:
        self.instance_id: str = definition["ID"]
        self.check_id = HEARTBEAT_PREFIX + self.instance_id
        self._client = consul_client(address, want.token)
        self._registration = api_registration(definition, want.ttl)
        self._want = want
        self._report = report
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self.registered = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"meshspec-register-{self.instance_id}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                if not self.registered.is_set():
                    if not self._client.agent.service.register(**self._registration):
                        raise RuntimeError("the agent refused the registration")
                    self._beat()  # a registration whose heartbeat fails is retried whole
                    self.registered.set()
                    self._report("registered", None)
                else:
                    self._beat()
                failures = 0
                self._stop.wait(self._want.ttl / 3)
            except Exception as error:  # py-consul raises requests' and its own errors alike
                self.registered.clear()  # make it again: the agent may have lost it
                failures += 1
                self._report("failed", f"{type(error).__name__}: {error}")
                ceiling = min(RETRY_CAP, RETRY_BASE * 2.0 ** min(failures - 1, 32))
                self._stop.wait(ceiling / 2 + self._rng.uniform(0, ceiling / 2))

    def _beat(self) -> None:
        healthy = self._want.healthy
        check = self._client.agent.check
        if healthy is None or healthy():
            accepted = check.ttl_pass(self.check_id)
        else:
            accepted = check.ttl_fail(self.check_id, "the application reports unhealthy")
        if not accepted:  # the agent no longer knows the check (404): register again
            raise RuntimeError(f"the agent has no check {self.check_id}")

    def close(self) -> None:
        """Stop the heartbeat and deregister (the agent drops the instance's checks too)."""
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self._client.agent.service.deregister(self.instance_id)
        except Exception as error:
            self._report("failed", f"deregistering: {type(error).__name__}: {error}")
        else:
            self._report("deregistered", None)
        finally:
            self._client.http.close()


CONSUL_SERVICES = "consul/services"
DEFAULT_AGENT = "http://127.0.0.1:8500"


def start_registration(mesh: Mesh, register: bool | RegisterAs, discovery: object) -> Registrar:
    """Read this service's definitions from ``mesh``'s bundle, pick this instance, and start
    keeping it registered; events report each step."""
    from meshspec_runtime.discovery.consul import ConsulDiscovery
    from meshspec_runtime.events import (
        InstanceDeregistered,
        InstanceRegistered,
        RegistrationFailed,
    )
    from meshspec_runtime.layout import bucket_name, bucket_of
    from meshspec_runtime.loader import load_listed_file

    want = register if isinstance(register, RegisterAs) else RegisterAs()
    assert mesh.bundle_path is not None
    # the definitions are grouped as the indexes group services
    relative, content = load_listed_file(
        mesh.bundle_path,
        lambda manifest: (
            f"{CONSUL_SERVICES}/{bucket_name(bucket_of(mesh.service, manifest.indexes))}.json"
        ),
    )
    where = f"{mesh.bundle_path}: {relative}"
    mine = [d for d in read_definitions(content, where) if d.get("Name") == mesh.service]
    definition = choose_instance(mine, want, where)
    address = want.consul or (
        discovery.address if isinstance(discovery, ConsulDiscovery) else DEFAULT_AGENT
    )
    instance = str(definition["ID"])

    def report(kind: str, reason: str | None) -> None:
        now = mesh.clock()
        if kind == "registered":
            mesh.events.emit(InstanceRegistered(mesh.service, "", now, instance))
        elif kind == "deregistered":
            mesh.events.emit(InstanceDeregistered(mesh.service, "", now, instance))
        else:
            mesh.events.emit(RegistrationFailed(mesh.service, "", now, instance, reason or ""))

    registrar = Registrar(address, definition, want, report)
    registrar.start()
    return registrar
