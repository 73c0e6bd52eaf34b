"""What changed between two bundles, in the terms a reviewer reads.

Both sides are read from bundle files (a spec is compiled in memory first), so a spec and a
bundle compare the same way. Each side becomes a flat view: ``(subject, field) -> value``, where
the subject is the mesh, a service, an endpoint (``service address:port``) or an edge
(``caller -> upstream``). Endpoints are keyed by address and port, not by id: ids default to a
position, and removing the first instance must not read as every instance changing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
import yaml_rs

from meshspec.spec.units import format_seconds

POLICY = "policy.json"
MANIFEST = "manifest.json"
CONSUL_SERVICES = "consul/services/"
CONSUL_ENTRIES = "consul/config-entries/"
PROMETHEUS_RULES = "prometheus/"
DERIVED = ("services/", "index/")
"""Service buckets restate policy.json (whose view covers them) and index files list hashes,
both with the bundle's version: every one of them changes with every change, so they are not
lines of their own."""
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
    unit: str | None = None
    """How to read a number: ``s`` (seconds), ``%`` (a fraction shown as a percentage),
    ``/s``; None: as it is."""
    detail: str | None = None
    """For a policy section switched on or off: the fields it holds."""

    def text(self) -> str:
        if self.kind == "changed":
            old, new = _show(self.old, self.unit), _show(self.new, self.unit)
            if isinstance(self.old, str) and isinstance(self.new, str):
                old, new = _abbreviate(old, new)
            detail = f" ({self.detail})" if self.detail else ""
            return f"{self.subject}: {self.field} {old} -> {new}{detail}"
        return f"{self.what} {self.kind}: {self.subject}"

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.text()}


@dataclass(frozen=True, slots=True)
class View:
    version: str
    subjects: dict[str, str]
    """Subject -> what it is (service, endpoint, edge, mesh)."""
    settings: dict[tuple[str, str], Scalar]
    units: dict[tuple[str, str], str]
    """The unit of a numeric setting, where it has one."""


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
            unit = new.units.get(key) or old.units.get(key)
            changes.append(Change("changed", "setting", subject, field, before, after, unit))
    # A policy switched on or off is one change, not one per field it holds; switched on, the
    # fields it holds are listed beside it.
    toggled = {
        (c.subject, c.field)
        for c in changes
        if ENABLED in (c.old, c.new) and None in (c.old, c.new)
    }
    changes = [
        _with_detail(c, new) if (c.subject, c.field) in toggled and c.new == ENABLED else c
        for c in changes
        if not _within(c, toggled)
    ]
    if not changes and old.version != new.version:
        # Nothing the view reads changed, yet some file did: say so rather than "no changes".
        changes.append(Change("changed", "setting", "bundle", "version", old.version, new.version))
    return changes


def _with_detail(change: Change, side: View) -> Change:
    prefix = f"{change.field}."
    held = [
        f"{field.removeprefix(prefix)} {_show(value, side.units.get((subject, field)))}"
        for (subject, field), value in side.settings.items()
        if subject == change.subject and field.startswith(prefix) and value != ENABLED
    ]
    return Change(
        change.kind,
        change.what,
        change.subject,
        change.field,
        change.old,
        change.new,
        change.unit,
        ", ".join(held) or None,
    )


def _within(change: Change, toggled: set[tuple[str, str | None]]) -> bool:
    field = change.field or ""
    parts = field.split(".")
    return any((change.subject, ".".join(parts[:i])) in toggled for i in range(1, len(parts)))


def view(files: Mapping[str, bytes]) -> View:
    manifest = orjson.loads(files[MANIFEST])
    policy = orjson.loads(files[POLICY])
    subjects: dict[str, str] = {"mesh": "mesh", "bundle": "bundle"}
    settings: dict[tuple[str, str], Scalar] = {("mesh", "name"): manifest["mesh"]}
    units: dict[tuple[str, str], str] = {("mesh", "dns.ttl"): "s"}
    for path, content in files.items():
        if path.startswith("dns/") and path.endswith(".zone"):
            for match in _MESH_FIELDS_IN_ZONE.finditer(content):
                value = match[2].decode().rstrip(".")
                if match[1] == b"ORIGIN":
                    settings["mesh", "dns.zone"] = value
                else:
                    settings["mesh", "dns.ttl"] = int(value) if value.isdigit() else value
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
                unit = _policy_unit(field, fields)
                if unit is not None:
                    units[subject, field] = unit
    for path, content in sorted(files.items()):
        if path.startswith(CONSUL_SERVICES) and path.endswith(".json"):
            _consul_view(orjson.loads(content)["services"], subjects, settings)
        elif path.startswith(CONSUL_ENTRIES) and path.endswith(".json"):
            for entry in orjson.loads(content)["entries"]:
                subject = f"{entry['Kind']} {entry['Name']}"
                subjects[subject] = "consul config entry"
                for field, value in _flatten(entry):
                    if field not in ("Kind", "Name"):
                        settings[subject, field] = value
        elif path.startswith(PROMETHEUS_RULES) and path.endswith((".yml", ".yaml")):
            _rules_view(yaml_rs.loads(content.decode(), parse_datetime=False), subjects, settings)
        elif path not in (MANIFEST, POLICY) and not path.startswith(("dns/", "consul/", *DERIVED)):
            # a file this view does not read: still one line when it changes
            subjects[f"file {path}"] = "file"
            settings[f"file {path}", "sha256"] = hashlib.sha256(content).hexdigest()[:12]
    settings["bundle", "generator"] = manifest["generator"]
    return View(manifest["version"], subjects, settings, units)


# Policy fields (the last part of the flattened name) that hold seconds, fractions or rates.
_SECONDS = frozenset(
    {
        "timeout",
        "per_try_timeout",
        "base",
        "max",
        "window",
        "open_for",
        "open_for_max",
        "over",
        "ewma_decay",
        "base_ejection",
        "max_ejection",
    }
)
_FRACTIONS = frozenset({"ratio", "failure_rate", "rate", "panic_threshold", "max_ejected"})


def _policy_unit(field: str, fields: list[tuple[str, Scalar]]) -> str | None:
    last = field.rsplit(".", 1)[-1]
    if last in _SECONDS:
        return "s"
    if last in _FRACTIONS:
        return "%"
    if last == "min_per_second":
        return "/s"
    if field == "circuit_breaker.window.size":
        kind = dict(fields).get("circuit_breaker.window.kind")
        return "s" if kind == "time" else " calls"
    return None


def _rules_view(
    document: Any, subjects: dict[str, str], settings: dict[tuple[str, str], Scalar]
) -> None:
    """Alert rules, one subject per rule: ``NAME caller -> upstream`` (its labels say
    which edge), with its expression, duration, labels and annotations as fields."""
    groups = document.get("groups") if isinstance(document, dict) else None
    for group in groups if isinstance(groups, list) else []:
        for index, rule in enumerate(group.get("rules") or []):
            labels = rule.get("labels") or {}
            name = rule.get("alert") or rule.get("record") or f"rule {index}"
            edge = (
                f" {labels['caller']} -> {labels['upstream']}"
                if "caller" in labels and "upstream" in labels
                else f" in {group.get('name')}"
            )
            subject = f"{name}{edge}"
            subjects[subject] = "alert rule"
            for field, value in _flatten(rule):
                if field != "alert":
                    settings[subject, field] = value


def _consul_view(
    instances: list[dict[str, Any]],
    subjects: dict[str, str],
    settings: dict[tuple[str, str], Scalar],
) -> None:
    seen: set[str] = set()  # a file holds the instances of several services
    for instance in instances:
        service = instance["Name"]
        endpoint = f"{service} {_host_port(instance['Address'], instance['Port'])}"
        subjects[endpoint] = "endpoint"
        settings[endpoint, "id"] = instance["ID"]
        settings[endpoint, "weight"] = instance["Weights"]["Passing"]
        if service in seen:
            continue  # tags, meta and the check are the service's, the same on every instance
        seen.add(service)
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


def _show(value: Scalar, unit: str | None = None) -> str:
    if value is None:
        return "off"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else '""'
    if unit == "s" and value > 0:
        return format_seconds(float(value))
    if unit == "%":
        return f"{value * 100:g}%"
    if unit is not None:
        return f"{value:g}{unit}"
    return f"{value:g}" if isinstance(value, float) else str(value)


_LONG = 60


def _abbreviate(old: str, new: str) -> tuple[str, str]:
    """Long texts that differ in a small part (an alert expression), cut to that part with
    some context on either side."""
    if len(old) <= _LONG and len(new) <= _LONG:
        return old, new
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    end = 0
    while end < min(len(old), len(new)) - start and old[-1 - end] == new[-1 - end]:
        end += 1
    context = 20
    head = max(0, start - context)
    tails = (len(old) - end, len(new) - end)

    def cut(text: str, tail: int) -> str:
        stop = min(len(text), tail + context)
        return ("..." if head else "") + text[head:stop] + ("..." if stop < len(text) else "")

    return cut(old, tails[0]), cut(new, tails[1])
