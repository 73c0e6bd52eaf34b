"""What changed between two bundles, in the terms a reviewer reads.

Both sides are read from bundle files (a spec is compiled in memory first), so a spec and a
bundle compare the same way. Each side becomes a flat view: ``(subject, field) -> value``, where
the subject is the mesh, a service, an endpoint (``service address:port``) or an edge
(``caller -> upstream``). Endpoints are keyed by address and port, not by id: ids default to a
position, and removing the first instance must not read as every instance changing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

POLICY = "policy.json"
MANIFEST = "manifest.json"
CONSUL_SERVICES = "consul/services/"
CONSUL_ENTRIES = "consul/config-entries/"
_MESH_FIELDS_IN_ZONE = re.compile(rb"^\$(ORIGIN|TTL) (\S+)", re.MULTILINE)
_INTERNAL_META = ("meshspec_",)

Scalar = str | int | float | bool | None
ENABLED = "on"
"""The value of a policy section that is present (its fields are listed beside it)."""


@dataclass(frozen=True, slots=True)
class Change:
    kind: str
    """``added``, ``removed`` or ``changed``."""
    what: str
    """``service``, ``endpoint``, ``edge``, or ``setting``."""
    subject: str
    field: str | None = None
    old: Scalar = None
    new: Scalar = None

    def text(self) -> str:
        if self.kind == "changed":
            return f"{self.subject}: {self.field} {_show(self.old)} -> {_show(self.new)}"
        return f"{self.what} {self.kind}: {self.subject}"

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.text()}


@dataclass(frozen=True, slots=True)
class View:
    version: str
    subjects: dict[str, str]
    """Subject -> what it is (service, endpoint, edge, mesh)."""
    settings: dict[tuple[str, str], Scalar]


def diff(old_files: Mapping[str, bytes], new_files: Mapping[str, bytes]) -> list[Change]:
    return diff_views(view(old_files), view(new_files))


def diff_views(old: View, new: View) -> list[Change]:
    changes: list[Change] = []
    gone = old.subjects.keys() - new.subjects.keys()
    came = new.subjects.keys() - old.subjects.keys()
    whole = {s for s in gone | came if (old.subjects.get(s) or new.subjects.get(s)) == "service"}
    for kind, subjects, side in (("removed", gone, old), ("added", came, new)):
        for subject in sorted(subjects):
            what = side.subjects[subject]
            if what == "endpoint" and subject.split(" ", 1)[0] in whole:
                continue  # a service added or removed is one change, with its endpoints
            changes.append(Change(kind, what, subject))
    for key in sorted(old.settings.keys() | new.settings.keys()):
        subject, field = key
        if subject not in old.subjects or subject not in new.subjects:
            continue  # reported as a whole
        before, after = old.settings.get(key), new.settings.get(key)
        if before != after:
            changes.append(Change("changed", "setting", subject, field, before, after))
    # A policy switched on or off is one change, not one per field it holds.
    toggled = {
        (c.subject, c.field)
        for c in changes
        if ENABLED in (c.old, c.new) and None in (c.old, c.new)
    }
    changes = [c for c in changes if not _within(c, toggled)]
    if not changes and old.version != new.version:
        # Nothing the view reads changed, yet some file did: say so rather than "no changes".
        changes.append(Change("changed", "setting", "bundle", "version", old.version, new.version))
    return changes


def _within(change: Change, toggled: set[tuple[str, str | None]]) -> bool:
    field = change.field or ""
    parts = field.split(".")
    return any((change.subject, ".".join(parts[:i])) in toggled for i in range(1, len(parts)))


def view(files: Mapping[str, bytes]) -> View:
    manifest = orjson.loads(files[MANIFEST])
    policy = orjson.loads(files[POLICY])
    subjects: dict[str, str] = {"mesh": "mesh", "bundle": "bundle"}
    settings: dict[tuple[str, str], Scalar] = {("mesh", "name"): manifest["mesh"]}
    for path, content in files.items():
        if path.startswith("dns/") and path.endswith(".zone"):
            for match in _MESH_FIELDS_IN_ZONE.finditer(content):
                field = "dns.zone" if match[1] == b"ORIGIN" else "dns.ttl"
                settings["mesh", field] = match[2].decode().rstrip(".")
    flat: dict[str, list[tuple[str, Scalar]]] = {}  # policy id -> its fields, flattened once
    for name, service in policy["services"].items():
        subjects[name] = "service"
        settings[name, "port"] = service["port"]
        settings[name, "protocol"] = service["protocol"]
        for upstream, edge in service["upstreams"].items():
            subject = f"{name} -> {upstream}"
            subjects[subject] = "edge"
            key = edge["policy"]
            fields = flat.get(key)
            if fields is None:
                fields = flat[key] = _flatten(policy["policies"][key])
            for field, value in fields:
                settings[subject, field] = value
    for path, content in sorted(files.items()):
        if path.startswith(CONSUL_SERVICES) and path.endswith(".json"):
            _consul_view(orjson.loads(content)["services"], subjects, settings)
        elif path.startswith(CONSUL_ENTRIES) and path.endswith(".json"):
            entry = orjson.loads(content)
            subject = f"consul {entry['Kind']} {entry['Name']}"
            subjects[subject] = "consul config entry"
            for field, value in _flatten(entry):
                if field not in ("Kind", "Name"):
                    settings[subject, field] = value
    settings["bundle", "generator"] = manifest["generator"]
    return View(manifest["version"], subjects, settings)


def _consul_view(
    instances: list[dict[str, Any]],
    subjects: dict[str, str],
    settings: dict[tuple[str, str], Scalar],
) -> None:
    for index, instance in enumerate(instances):
        service = instance["Name"]
        endpoint = f"{service} {_host_port(instance['Address'], instance['Port'])}"
        subjects[endpoint] = "endpoint"
        settings[endpoint, "id"] = instance["ID"]
        settings[endpoint, "weight"] = instance["Weights"]["Passing"]
        if index:
            continue  # tags, meta and the check are the service's, the same on every instance
        settings[service, "tags"] = ", ".join(instance["Tags"])
        for key, value in instance["Meta"].items():
            if not key.startswith(_INTERNAL_META):
                settings[service, f"meta.{key}"] = value
        for check in instance.get("Checks", []):
            for field, value in _check_view(check).items():
                settings[service, f"health_check.{field}"] = value


def _check_view(check: dict[str, Any]) -> dict[str, Scalar]:
    out: dict[str, Scalar] = {}
    if "HTTP" in check:
        out["http"] = urlsplit(check["HTTP"]).path
    elif "GRPC" in check:
        target = check["GRPC"]
        out["grpc"] = target.split("/", 1)[1] if "/" in target else ""
    elif "TCP" in check:
        out["tcp"] = True
    for field, name in (
        ("TTL", "ttl"),
        ("Interval", "interval"),
        ("Timeout", "timeout"),
        ("DeregisterCriticalServiceAfter", "deregister_after"),
        ("success_before_passing", "success_threshold"),
        ("failures_before_critical", "failure_threshold"),
    ):
        if field in check:
            out[name] = check[field]
    return out


def _host_port(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Scalar]]:
    if isinstance(value, dict):
        out: list[tuple[str, Scalar]] = [(prefix, ENABLED)] if prefix else []
        for key, item in value.items():
            out.extend(_flatten(item, f"{prefix}.{key}" if prefix else key))
        return out
    if isinstance(value, list):
        return [(prefix, ", ".join(_item(item) for item in value))]
    return [(prefix, value)]


def _item(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _show(value: Scalar) -> str:
    if value is None:
        return "off"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else '""'
    return str(value)
