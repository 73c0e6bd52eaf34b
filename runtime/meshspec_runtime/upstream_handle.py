"""``MeshUpstream``: one upstream of a service, and calls through its policies.

Apart from ``meshspec_runtime.mesh`` (which re-exports it) so that it is compiled with the
drivers: every call of every integration goes through :meth:`MeshUpstream.call` or
:meth:`MeshUpstream.call_async`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from meshspec_runtime.bundle import Endpoint
from meshspec_runtime.drivers.aio import call_async
from meshspec_runtime.drivers.classify import CallFailed, Classifier
from meshspec_runtime.drivers.sync import call_sync
from meshspec_runtime.events import CallRefused
from meshspec_runtime.mesh_errors import MeshClosedError
from meshspec_runtime.policy.call import REFUSALS
from meshspec_runtime.policy.upstream import UpstreamPolicies

if TYPE_CHECKING:
    from meshspec_runtime.mesh import Mesh

T = TypeVar("T")


class MeshUpstream:
    """One upstream of the service: its policies, and calls through them.

    Integrations drive their attempts through :meth:`call`/:meth:`call_async`; an application
    can too, with any client: ``fn(endpoint, timeout)`` performs one attempt.
    """

    __slots__ = ("_mesh", "classify", "name", "policies")

    def __init__(
        self, mesh: Mesh, name: str, policies: UpstreamPolicies, classify: Classifier
    ) -> None:
        self._mesh = mesh
        self.name = name
        self.policies = policies
        """Replaced whole when a reload changes this upstream's policy (read it per call)."""
        self.classify = classify

    @property
    def caller(self) -> str:
        return self._mesh.service

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return self.policies.endpoints

    def call(
        self,
        fn: Callable[[Endpoint, float], T],
        *,
        key: str | None = None,
        discard: Callable[[T], object] | None = None,
    ) -> T:
        """One logical request: ``fn(endpoint, timeout)`` per attempt (see ``call_sync``).
        ``discard`` receives each answer the call retries instead of returning (close it)."""
        mesh = self._mesh
        if mesh.closed:
            raise MeshClosedError(f"{mesh.describe()} is closed: no call to {self.name!r}")
        try:
            if mesh.tracing is None:
                return call_sync(
                    self.policies, fn, key=key, classify=self.classify, discard=discard
                )
            with mesh.tracing.call(self) as spans:
                return call_sync(
                    self.policies,
                    spans.attempts(fn),
                    key=key,
                    classify=self.classify,
                    discard=discard,
                )
        except CallFailed as failed:
            self.report_failure(failed)
            raise

    async def call_async(
        self,
        afn: Callable[[Endpoint, float], Awaitable[T]],
        *,
        key: str | None = None,
        discard: Callable[[T], object] | None = None,
    ) -> T:
        """:meth:`call` under asyncio (see ``call_async``)."""
        mesh = self._mesh
        if mesh.closed:
            raise MeshClosedError(f"{mesh.describe()} is closed: no call to {self.name!r}")
        try:
            if mesh.tracing is None:
                return await call_async(
                    self.policies, afn, key=key, classify=self.classify, discard=discard
                )
            with mesh.tracing.call(self) as spans:
                return await call_async(
                    self.policies,
                    spans.async_attempts(afn),
                    key=key,
                    classify=self.classify,
                    discard=discard,
                )
        except CallFailed as failed:
            self.report_failure(failed)
            raise

    def report_failure(self, failed: CallFailed) -> None:
        """Emit ``CallRefused`` when the policies ended the call themselves. ``call`` and
        ``call_async`` do it; an integration that drives the call machine itself calls it."""
        if failed.reason in REFUSALS:
            now = self._mesh.clock()
            self._mesh.events.emit(CallRefused(self.caller, self.name, now, failed.reason))
