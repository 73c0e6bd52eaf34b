"""The Consul inputs the tests feed to the agent, and how they feed them.

Two sources with the same layout (``services/*.json`` and ``config-entries/*.json``): the
hand-written files in ``tests/consul/data`` (one config entry per file), and what ``meshspec
compile examples/shop.yaml`` writes under ``consul/`` (config entries grouped by bucket).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import consul
import pytest
from support import REPO

HAND_WRITTEN = Path(__file__).resolve().parent / "data"
COMPILE_COMMAND = REPO / "meshspec" / "commands" / "compile.py"
SHOP = REPO / "examples" / "shop.yaml"

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class ServiceFile:
    path: Path
    definitions: list[JsonObject]


@dataclass(frozen=True)
class ConsulInputs:
    label: str
    services: list[ServiceFile]
    config_entries: list[tuple[Path, JsonObject]]

    def definitions(self) -> list[JsonObject]:
        return [d for f in self.services for d in f.definitions]


def read_definitions(path: Path) -> list[JsonObject]:
    """The service definitions of one file in Consul's agent config format."""
    document = json.loads(path.read_text())
    if "services" in document:
        services: list[JsonObject] = document["services"]
        return services
    if "service" in document:
        return [document["service"]]
    raise AssertionError(f"{path}: neither a 'service' nor a 'services' key at the top level")


def read_entries(path: Path) -> list[JsonObject]:
    """The config entries of one file: a bundle's ``{"entries": [...]}``, or one entry (the
    form ``consul config write FILE`` reads)."""
    document = json.loads(path.read_text())
    if "entries" in document:
        entries: list[JsonObject] = document["entries"]
        return entries
    if "Kind" in document:
        return [document]
    raise AssertionError(f"{path}: neither an 'entries' nor a 'Kind' key at the top level")


def load_inputs(label: str, root: Path) -> ConsulInputs:
    services = [
        ServiceFile(path, read_definitions(path))
        for path in sorted((root / "services").glob("*.json"))
    ]
    entries = [
        (path, entry)
        for path in sorted((root / "config-entries").glob("*.json"))
        for entry in read_entries(path)
    ]
    assert services, f"no service definitions under {root / 'services'}"
    return ConsulInputs(label, services, entries)


def compiled_inputs(out: Path) -> ConsulInputs:
    """Compile the shop example and load its Consul folder; skipped until the command exists."""
    if not COMPILE_COMMAND.exists():
        pytest.skip(f"{COMPILE_COMMAND.relative_to(REPO)} does not exist yet (no compiler)")
    result = subprocess.run(
        [sys.executable, "-m", "meshspec.cli", "compile", str(SHOP), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, f"meshspec compile failed:\n{result.stdout}\n{result.stderr}"
    return load_inputs("compiled", out / "current" / "consul")  # the version published


# The agent's config-file format (what ``consul services register FILE`` and config dirs read)
# matches keys case-insensitively against snake_case names, with a few CamelCase aliases; the
# HTTP API matches CamelCase names case-insensitively, with a few snake_case aliases. Neither
# spelling of e.g. success_before_passing is accepted by both, so a file in the config format
# is spelt the API's way before it goes to the API. Both decoders reject unknown keys.
SERVICE_FIELDS = ("ID", "Name", "Address", "Port", "Tags", "Meta", "Weights", "Check", "Checks")
CHECK_FIELDS = (
    "CheckID",
    "Name",
    "Notes",
    "Status",
    "HTTP",
    "Header",
    "Method",
    "Body",
    "TCP",
    "UDP",
    "GRPC",
    "GRPCUseTLS",
    "TLSServerName",
    "TLSSkipVerify",
    "TTL",
    "Interval",
    "Timeout",
    "SuccessBeforePassing",
    "FailuresBeforeWarning",
    "FailuresBeforeCritical",
    "DeregisterCriticalServiceAfter",
)
_CHECK_ALIASES = {"id": "CheckID"}  # the config format's check "id" is the API's "CheckID"


def _folded(key: str) -> str:
    return key.replace("_", "").lower()


def _respell(obj: JsonObject, names: tuple[str, ...], aliases: dict[str, str]) -> JsonObject:
    table = {_folded(name): name for name in names} | aliases
    # An unknown key keeps its spelling, so the agent still gets to refuse it.
    return {table.get(_folded(key), key): value for key, value in obj.items()}


def api_definition(definition: JsonObject) -> JsonObject:
    """A service definition in the config-file format, spelt as the HTTP API spells it."""
    service = _respell(definition, SERVICE_FIELDS, {})
    checks = [_respell(c, CHECK_FIELDS, _CHECK_ALIASES) for c in service.pop("Checks", [])]
    if "Check" in service:
        checks.insert(0, _respell(service.pop("Check"), CHECK_FIELDS, _CHECK_ALIASES))
    if checks:
        service["Checks"] = checks
    if "Weights" in service:
        service["Weights"] = _respell(service["Weights"], ("Passing", "Warning"), {})
    return service


def register_through_api(client: consul.Consul, definition: JsonObject) -> None:
    """PUT /v1/agent/service/register through py-consul, every field passed on."""
    service = api_definition(definition)
    unknown = set(service) - set(SERVICE_FIELDS)
    assert not unknown, f"no mapping onto the HTTP API for fields {sorted(unknown)}"
    checks = service.get("Checks", [])
    accepted = client.agent.service.register(
        service["Name"],
        service_id=service.get("ID"),
        address=service.get("Address"),
        port=service.get("Port"),
        tags=service.get("Tags"),
        meta=service.get("Meta"),
        weights=service.get("Weights"),
        check=checks[0] if checks else None,
        extra_checks=checks[1:],
    )
    assert accepted is True, f"the agent refused {service.get('ID')}"


def persisted_checks(data_dir: Path) -> list[JsonObject]:
    """Every check the agent has registered, as the agent itself parsed it.

    The catalog and the agent's check API report a check's type, interval and timeout but not
    its target, thresholds or deregistration delay. The agent keeps each registered check,
    fully parsed (``ChkType``, durations in nanoseconds), under ``<data_dir>/checks/``; that
    file is Consul's internal format, read here only because the pinned version is known.
    """
    folder = data_dir / "checks"  # its "state" subfolder holds statuses, not definitions
    return [json.loads(path.read_text()) for path in sorted(folder.iterdir()) if path.is_file()]


_GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_seconds(text: str) -> float | None:
    """Seconds in a Go duration string (``1m30s``, ``2.5s``), or None if it is not one."""
    if not _GO_DURATION.match(text):
        return None
    return sum(
        float(number) * _UNIT_SECONDS[unit]
        for number, _, unit in re.findall(r"(\d+(\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    )


def mismatches(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Where ``actual`` (what Consul reports) lacks or differs from ``expected`` (what we sent).

    Consul may add fields and writes durations its own way (``2500ms`` comes back ``2.5s``),
    so objects compare as subsets and durations by their length of time.
    """
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, Consul has {actual!r}"]
        found: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                found.append(f"{where}.{key}: missing (Consul has {sorted(actual)})")
            else:
                found.extend(mismatches(value, actual[key], f"{where}.{key}"))
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: expected {expected!r}, Consul has {actual!r}"]
        return [
            m
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for m in mismatches(e, a, f"{where}[{i}]")
        ]
    seconds = go_seconds(expected) if isinstance(expected, str) else None
    if seconds is not None:
        # Consul echoes some durations as strings, others as integer nanoseconds.
        if isinstance(actual, str) and go_seconds(actual) == pytest.approx(seconds):
            return []
        if isinstance(actual, int) and actual == round(seconds * 1e9):
            return []
    return [] if expected == actual else [f"{where}: expected {expected!r}, Consul has {actual!r}"]


def wait_for(condition: Callable[[], bool], timeout: float = 15.0, every: float = 0.1) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)
