"""Hot reload: a newly published bundle version put in force without losing policy state.

``apply_reload`` builds the new upstream handles aside and has the mesh install them at once.
An upstream whose resolved policy is unchanged keeps its ``UpstreamPolicies`` object (its
breaker, retry budget, outlier detector and balancer state); only its endpoint list follows the
bundle (or discovery), through ``set_endpoints``, which keeps the survivors' state. A changed
upstream gets fresh policies; its handle is kept, so a client handed out earlier follows it.
Calls in flight hold the policies they started with and finish on them.

``BundleWatch`` polls the bundle home's ``current`` link and reloads when it names another
version folder: one ``readlink`` per poll, no file read until something was published.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.events import ReloadApplied, logger
from meshspec_runtime.layout import CURRENT, is_home
from meshspec_runtime.loader import ServiceBundle
from meshspec_runtime.policy.upstream import UpstreamPolicies

if TYPE_CHECKING:
    from meshspec_runtime.mesh import Mesh, MeshUpstream

DEFAULT_POLL = 1.0
"""Seconds between two looks at the bundle home's ``current``."""


def apply_reload(mesh: Mesh, loaded: ServiceBundle) -> None:
    """Install ``loaded`` (verified, same mesh, another version) in ``mesh``; the caller holds
    the mesh's swap lock."""
    old_handles = {name: mesh.upstream(name) for name in mesh.upstreams}
    handles: dict[str, MeshUpstream] = {}
    kept, renewed, added = [], [], []
    swaps: list[tuple[MeshUpstream, UpstreamPolicies]] = []
    moves: list[tuple[UpstreamPolicies, tuple[Endpoint, ...]]] = []
    for name, upstream in loaded.service.upstreams.items():
        endpoints = mesh.discovered(upstream.service, upstream.endpoints)
        handle = old_handles.get(name)
        if handle is not None and handle.policies.policy == upstream.policy:
            kept.append(name)
            handles[name] = handle
            if handle.policies.endpoints != endpoints:
                moves.append((handle.policies, endpoints))
            continue
        policies = mesh._build_policies(name, upstream.policy, endpoints)
        if handle is None:
            added.append(name)
            handles[name] = mesh._new_handle(name, policies)
        else:
            renewed.append(name)
            handles[name] = handle
            swaps.append((handle, policies))
    # the swap: every handle's new policies, then the mesh's table and version
    for handle, policies in swaps:
        handle.policies = policies
    for kept_policies, endpoints in moves:
        kept_policies.set_endpoints(endpoints)  # survivors keep their balancer/outlier state
    old_version = mesh.version
    mesh._install(loaded, handles)
    removed = sorted(set(old_handles) - set(handles))
    mesh.events.emit(
        ReloadApplied(
            mesh.service,
            "",
            mesh.clock(),
            old_version,
            loaded.version,
            tuple(kept),
            tuple(renewed),
            tuple(added),
            tuple(removed),
        )
    )


class BundleWatch:
    """Reloads ``mesh`` when the bundle home at ``home`` publishes another version."""

    def __init__(self, mesh: Mesh, home: Path, poll: float) -> None:
        if not is_home(home):
            from meshspec_runtime.mesh import MeshError

            raise MeshError(
                f"watch=True needs a bundle home (the folder `meshspec compile -o` publishes "
                f"to), not the version folder {home}"
            )
        if not poll > 0:
            raise ValueError(f"the watch's poll interval must be > 0 seconds, not {poll}")
        self._mesh = mesh
        self._link = home / CURRENT
        self._poll = poll
        self._seen: str | None = None  # the first look reloads: a publish may have raced open
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="meshspec-bundle-watch", daemon=True)

    def _target(self) -> str | None:
        try:
            return os.readlink(self._link)
        except OSError:
            return None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._poll):
            target = self._target()
            if target == self._seen:
                continue
            self._seen = target
            try:
                self._mesh.reload()
            except Exception:  # closed under us, or a bug: never kill the process's thread
                if self._mesh.closed:
                    return
                logger.exception("meshspec bundle watch: reload failed")
