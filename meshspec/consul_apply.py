"""What ``meshspec apply`` does: bring Consul's config entries in line with a bundle's.

The entries listed in the bundle's ``consul/config-entries/<bucket>.json`` files
(``{"entries": [...]}``) are the desired entries. Each is written with
``Meta.meshspec_mesh`` naming the mesh, which marks it as ours: a later apply removes an entry
of ours the bundle no longer has, and never touches an entry it did not create unless asked to
adopt it (``--adopt``). Consul rewrites some values (``2500ms`` comes back ``2.5s``), so an
entry is unchanged when every field the bundle sets reads back equal, durations by their
length: a second apply of the same bundle changes nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CONFIG_ENTRIES = "consul/config-entries/"
ENTRIES = "entries"
"""The key of each of those files' list of entries."""
MANAGED_META = "meshspec_mesh"
"""Meta key that marks an entry as written by ``meshspec apply`` (its value: the mesh)."""
KINDS = ("service-defaults", "service-resolver")
"""Kinds the compiler emits, in write order (a resolver is checked against the protocol its
service's defaults set); deletion goes in reverse."""

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Change:
    action: str
    """``create``, ``update``, ``delete``, or ``conflict`` (exists, not ours: left alone)."""
    kind: str
    name: str
    entry: JsonObject | None = None
    """What is written (create, update)."""
    fields: tuple[str, ...] = ()
    """Top-level fields that differ (update, conflict)."""

    def text(self) -> str:
        sign = {"create": "+", "update": "~", "delete": "-", "conflict": "!"}[self.action]
        detail = f" ({', '.join(self.fields)})" if self.fields else ""
        note = " exists and was not created by meshspec; --adopt to take it over" * (
            self.action == "conflict"
        )
        return f"{sign} {self.action} {self.kind}/{self.name}{detail}{note}"


@dataclass(slots=True)
class Plan:
    changes: list[Change] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def writes(self) -> list[Change]:
        return [c for c in self.changes if c.action != "conflict"]

    @property
    def conflicts(self) -> list[Change]:
        return [c for c in self.changes if c.action == "conflict"]


class ApplyError(Exception):
    """The bundle's entries cannot be applied (bad content, an error from Consul)."""


def desired_entries(files: Mapping[str, bytes], mesh: str) -> dict[tuple[str, str], JsonObject]:
    """The bundle's config entries by (kind, name), each marked as managed for ``mesh``."""
    desired: dict[tuple[str, str], JsonObject] = {}
    for path in sorted(files):
        if not (path.startswith(CONFIG_ENTRIES) and path.endswith(".json")):
            continue
        try:
            listed = json.loads(files[path])[ENTRIES]
        except (ValueError, KeyError, TypeError) as error:
            raise ApplyError(f"{path}: not a list of config entries ({error!r})") from None
        if not isinstance(listed, list):
            raise ApplyError(f"{path}: {ENTRIES} is not a list")
        for position, entry in enumerate(listed):
            where = f"{path}: {ENTRIES}[{position}]"
            try:
                kind, name = entry["Kind"], entry["Name"]
            except (KeyError, TypeError) as error:
                raise ApplyError(f"{where}: not a config entry ({error!r})") from None
            if kind not in KINDS:
                raise ApplyError(f"{where}: kind {kind!r} is not one meshspec writes ({KINDS})")
            if (kind, name) in desired:
                raise ApplyError(f"{where}: {kind}/{name} is listed twice")
            entry["Meta"] = {**entry.get("Meta", {}), MANAGED_META: mesh}
            desired[(kind, name)] = entry
    return desired


def plan(
    desired: Mapping[tuple[str, str], JsonObject],
    current: Mapping[tuple[str, str], JsonObject],
    mesh: str,
    adopt: bool = False,
) -> Plan:
    """The changes that make ``current`` (what Consul holds, of ``KINDS``) hold ``desired``."""
    result = Plan()
    order = {kind: index for index, kind in enumerate(KINDS)}
    for key in sorted(desired, key=lambda k: (order[k[0]], k[1])):
        kind, name = key
        want, have = desired[key], current.get(key)
        if have is None:
            result.changes.append(Change("create", kind, name, want))
            continue
        differing = tuple(f for f in want if not same(want[f], have.get(f)))
        if not differing:
            result.unchanged.append(f"{kind}/{name}")
        elif _owner(have) == mesh or adopt:
            result.changes.append(Change("update", kind, name, want, differing))
        else:
            result.changes.append(Change("conflict", kind, name, None, differing))
    for key in sorted(current, key=lambda k: (-order.get(k[0], 0), k[1])):
        if key not in desired and _owner(current[key]) == mesh:
            result.changes.append(Change("delete", *key))
    return result


def _owner(entry: JsonObject) -> object:
    meta = entry.get("Meta")
    return meta.get(MANAGED_META) if isinstance(meta, dict) else None


_GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _seconds(text: str) -> float | None:
    if not _GO_DURATION.match(text):
        return None
    return sum(
        float(number) * _UNIT_SECONDS[unit]
        for number, _, unit in re.findall(r"(\d+(\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    )


def same(want: Any, have: Any) -> bool:
    """Whether Consul's ``have`` holds ``want``: objects as subsets (Consul adds fields),
    lists item by item, durations by their length of time."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(same(v, have.get(k)) for k, v in want.items())
    if isinstance(want, list):
        return (
            isinstance(have, list)
            and len(want) == len(have)
            and all(same(w, h) for w, h in zip(want, have, strict=True))
        )
    if isinstance(want, str) and want != have:
        wanted = _seconds(want)
        if wanted is None:
            return False
        if isinstance(have, str):  # Consul echoes some durations as strings...
            held = _seconds(have)
            return held is not None and abs(held - wanted) < 1e-9
        if isinstance(have, int) and not isinstance(have, bool):  # ...others as nanoseconds
            return abs(have / 1e9 - wanted) < 1e-9
        return False
    if isinstance(want, bool) or isinstance(have, bool):
        return want is have
    return bool(want == have)


def read_current(client: Any) -> dict[tuple[str, str], JsonObject]:
    """Every config entry of ``KINDS`` Consul holds."""
    current: dict[tuple[str, str], JsonObject] = {}
    for kind in KINDS:
        for entry in client.config.list(kind) or []:
            current[(kind, entry["Name"])] = entry
    return current


def execute(client: Any, changes: list[Change]) -> None:
    """Perform the writes and deletes of a plan, in its order."""
    for change in changes:
        if change.action in ("create", "update"):
            assert change.entry is not None
            body = {k: v for k, v in change.entry.items() if k not in ("Kind", "Name")}
            if not client.config.set(change.kind, change.name, body):
                raise ApplyError(f"Consul refused {change.kind}/{change.name}")
        elif change.action == "delete":
            client.config.delete(change.kind, change.name)
