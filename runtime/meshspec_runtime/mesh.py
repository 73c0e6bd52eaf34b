"""``Mesh``: the one object a service holds.

``Mesh.open(bundle, service=...)`` loads a verified bundle, takes this service's slice and
builds one :class:`UpstreamPolicies` per upstream. It hands out per-upstream handles
(``mesh.upstream("payments")``) and client integrations (``mesh.httpx_client("payments")``,
``mesh.requests_session()``, ``mesh.aiohttp_session()``, ``mesh.grpc_channel("payments")`` ...),
owns their lifecycle (``close``/``aclose``, or use it as a context manager) and reports policy
decisions as events (``mesh.on(BreakerTransition, handler)``; see ``events``).

Each integration lives in ``meshspec_runtime.integrations`` and is imported only when its
client is asked for, so the core needs nothing but pydantic.
"""

from __future__ import annotations

import difflib
import inspect
import os
import random
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from meshspec_runtime.bundle import Endpoint, ServicePolicies
from meshspec_runtime.drivers.classify import (
    UserClassifier,
    falling_back,
)
from meshspec_runtime.drivers.classify import classify as builtin_classify
from meshspec_runtime.events import (
    BreakerTransition,
    BudgetFellBack,
    BudgetShared,
    E,
    EndpointsEjected,
    EndpointsReturned,
    EventBus,
    Handler,
    ReloadRefused,
    logger,
)
from meshspec_runtime.loader import BundleError, ServiceBundle, load_service
from meshspec_runtime.mesh_errors import MeshClosedError as MeshClosedError  # re-exported
from meshspec_runtime.mesh_errors import MeshError as MeshError
from meshspec_runtime.mesh_errors import UnknownUpstreamError as UnknownUpstreamError
from meshspec_runtime.policy.breaker import BreakerState
from meshspec_runtime.policy.call import REFUSALS as REFUSALS  # re-exported: its former home
from meshspec_runtime.policy.config import BudgetScope
from meshspec_runtime.policy.outcome import OutcomePredicate
from meshspec_runtime.policy.upstream import UpstreamPolicies
from meshspec_runtime.upstream_handle import MeshUpstream as MeshUpstream  # re-exported

if TYPE_CHECKING:
    import aiohttp
    import grpc
    import grpc.aio
    import httpx
    import requests
    from opentelemetry.trace import TracerProvider
    from prometheus_client.registry import CollectorRegistry

    from meshspec_runtime.discovery.register import RegisterAs, Registrar
    from meshspec_runtime.discovery.source import Discovery
    from meshspec_runtime.discovery.watch import DiscoveryWatch
    from meshspec_runtime.observe.prometheus import MeshCollector
    from meshspec_runtime.observe.tracing import Tracing
    from meshspec_runtime.reload import BundleWatch
    from meshspec_runtime.shared.exchange import BudgetStore, SharingState

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What :meth:`Mesh.reload` did: ``applied`` a new version, found the same one
    (``applied`` False, ``refused`` None), or ``refused`` a bundle (why)."""

    applied: bool
    version: str
    """The version in force afterwards."""
    refused: str | None = None


class Mesh:
    """A service's view of the mesh: one verified bundle, this service's upstreams."""

    def __init__(
        self,
        service: ServicePolicies,
        *,
        mesh: str,
        version: str,
        rng: random.Random | None = None,
        classify: UserClassifier | None = None,
        retry_predicate: OutcomePredicate | None = None,
        clock: Callable[[], float] | None = None,
        metrics: CollectorRegistry | None = None,
        tracer_provider: TracerProvider | None = None,
        shared_budgets: BudgetStore | None = None,
    ) -> None:
        """Prefer :meth:`open`; this builds a mesh from an already loaded service slice."""
        self.service = service.name
        self.mesh = mesh
        self.version = version
        self.protocol = service.protocol
        self.clock = clock or time.monotonic
        self.events = EventBus()
        self.closed = False
        self._closeables: list[Any] = []
        self.tracing: Tracing | None = None
        if tracer_provider is not None:
            from meshspec_runtime.observe.tracing import Tracing

            self.tracing = Tracing(tracer_provider)
        rng = rng if rng is not None else random.Random()
        classifier = falling_back(classify) if classify is not None else builtin_classify
        self._rng, self._classifier, self._retry_predicate = rng, classifier, retry_predicate
        self._shared_budgets = shared_budgets
        self._upstreams: dict[str, MeshUpstream] = {}
        for name, upstream in service.upstreams.items():
            policies = UpstreamPolicies(
                upstream.policy, upstream.endpoints, rng=rng, retry_predicate=retry_predicate
            )
            self._watch(name, policies)
            self._share_budget(name, policies)
            self._upstreams[name] = MeshUpstream(self, name, policies, classifier)
        self._served: dict[str, tuple[str, tuple[Endpoint, ...]]] = {
            name: (upstream.service, upstream.endpoints)
            for name, upstream in service.upstreams.items()
        }
        """Upstream name -> (the service it is, the bundle's endpoint list for it)."""
        self.bundle_path: Path | None = None
        """Where :meth:`reload` reads the bundle (set by :meth:`open`)."""
        self.reloads = {"applied": 0, "refused": 0}
        """Reloads applied and refused so far (exported as a metric)."""
        self._swap = threading.RLock()
        """Serialises reloads and discovery publishes, so neither loses the other's update."""
        self.discovery: DiscoveryWatch | None = None
        self.registrar: Registrar | None = None
        self._bundle_watch: BundleWatch | None = None
        self._metrics = metrics
        self._collector: MeshCollector | None = None
        if metrics is not None:
            from meshspec_runtime.observe.prometheus import MeshCollector

            self._collector = MeshCollector(self)
            metrics.register(self._collector)

    @classmethod
    def open(
        cls,
        bundle: str | os.PathLike[str],
        *,
        service: str,
        rng: random.Random | None = None,
        classify: UserClassifier | None = None,
        retry_predicate: OutcomePredicate | None = None,
        metrics: CollectorRegistry | None = None,
        tracer_provider: TracerProvider | None = None,
        discovery: Discovery | None = None,
        register: bool | RegisterAs = False,
        watch: bool | float = False,
        shared_budgets: BudgetStore | None = None,
    ) -> Mesh:
        """Load the bundle at ``bundle`` (verified; see ``load_bundle``) for ``service``.

        ``classify(value, latency)`` classifies what an attempt returned or raised; it returns
        None for what it does not know, which the built-in classification then decides.
        ``retry_predicate(outcome)`` retries outcomes the bundle's ``retry.on`` does not list.
        ``metrics``: a prometheus-client ``CollectorRegistry`` to export this mesh's metrics on
        (extra ``meshspec-runtime[prometheus]``; see ``observe.prometheus``).
        ``tracer_provider``: an OpenTelemetry ``TracerProvider``; every call and attempt
        becomes a span (extra ``meshspec-runtime[otel]``; see ``observe.tracing``).
        Only the manifest and this service's slice are read, from the one version the bundle
        home's ``current`` names (see ``load_service``). Raises ``BundleError`` for a bundle
        that fails verification, ``ServiceNotInBundleError`` (a ``BundleError``) for a service
        the bundle does not hold.

        ``discovery``: ``ConsulDiscovery(...)`` or ``DnsDiscovery(...)`` keeps every upstream's
        endpoints current from a background thread (None: the bundle's list).
        ``register``: True (or a ``RegisterAs`` naming the instance) registers this instance
        with the local Consul agent from the bundle's definition until ``close``.
        ``watch``: True (or a poll interval in seconds) reloads when a new version is
        published to the bundle home (see :meth:`reload`).
        ``shared_budgets``: where retry budgets of ``scope: service`` are shared by the
        service's replicas, e.g. ``RedisStore("redis://127.0.0.1:6379")`` (extra
        ``meshspec-runtime[redis]``; see ``shared``); the mesh closes it when it closes.
        Without it, such a budget counts this process alone (a warning says so).
        """
        loaded = load_service(bundle, service)
        mesh = cls(
            loaded.service,
            mesh=loaded.mesh,
            version=loaded.version,
            rng=rng,
            classify=classify,
            retry_predicate=retry_predicate,
            metrics=metrics,
            tracer_provider=tracer_provider,
            shared_budgets=shared_budgets,
        )
        mesh.bundle_path = Path(bundle)
        try:
            if discovery is not None:
                mesh._start_discovery(discovery)
            if register is not False:
                mesh._start_registration(register, discovery)
            if watch is not False:
                from meshspec_runtime.reload import DEFAULT_POLL, BundleWatch

                poll = DEFAULT_POLL if watch is True else float(watch)
                mesh._bundle_watch = BundleWatch(mesh, Path(bundle), poll)
                mesh._bundle_watch.start()
        except BaseException:
            mesh.close()
            raise
        return mesh

    # -- upstreams --------------------------------------------------------------------------

    @property
    def upstreams(self) -> tuple[str, ...]:
        return tuple(self._upstreams)

    def upstream(self, name: str) -> MeshUpstream:
        """The handle of upstream ``name``; ``UnknownUpstreamError`` if the bundle does not
        list it for this service."""
        handle = self._upstreams.get(name)
        if handle is None:
            raise UnknownUpstreamError(
                f"{self.describe()} has no upstream {name!r}"
                f"{_did_you_mean(name, list(self._upstreams))}; its upstreams: "
                f"{', '.join(sorted(self._upstreams)) or 'none'}"
            )
        return handle

    def call(
        self, upstream: str, fn: Callable[[Endpoint, float], T], *, key: str | None = None
    ) -> T:
        """``mesh.upstream(upstream).call(fn, key=key)``."""
        return self.upstream(upstream).call(fn, key=key)

    async def call_async(
        self,
        upstream: str,
        afn: Callable[[Endpoint, float], Awaitable[T]],
        *,
        key: str | None = None,
    ) -> T:
        """``await mesh.upstream(upstream).call_async(afn, key=key)``."""
        return await self.upstream(upstream).call_async(afn, key=key)

    # -- client integrations (each an optional extra, imported here on first use) ------------

    def httpx_client(self, upstream: str | None = None, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` whose requests go through the mesh: ``http://payments/charge``
        names upstream ``payments``. With ``upstream``, relative URLs go to it."""
        from meshspec_runtime.integrations import httpx as integration

        return self.adopt(integration.client(self, upstream, **kwargs))

    def async_httpx_client(self, upstream: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        """:meth:`httpx_client` for asyncio: an ``httpx.AsyncClient``."""
        from meshspec_runtime.integrations import httpx as integration

        return self.adopt(integration.async_client(self, upstream, **kwargs))

    def requests_session(self, upstream: str | None = None) -> requests.Session:
        """A ``requests.Session`` whose requests go through the mesh (an ``HTTPAdapter``)."""
        from meshspec_runtime.integrations import requests as integration

        return self.adopt(integration.session(self, upstream))

    def aiohttp_session(self, upstream: str | None = None, **kwargs: Any) -> aiohttp.ClientSession:
        """An ``aiohttp.ClientSession`` whose requests go through the mesh (a middleware)."""
        from meshspec_runtime.integrations import aiohttp as integration

        return self.adopt(integration.session(self, upstream, **kwargs))

    def grpc_channel(self, upstream: str, **kwargs: Any) -> grpc.Channel:
        """A ``grpc.Channel`` to ``upstream``: every call goes through its policies."""
        from meshspec_runtime.integrations import grpc as integration

        return self.adopt(integration.channel(self, upstream, **kwargs))

    def grpc_aio_channel(self, upstream: str, **kwargs: Any) -> grpc.aio.Channel:
        """:meth:`grpc_channel` for ``grpc.aio``."""
        from meshspec_runtime.integrations import grpc as integration

        return self.adopt(integration.aio_channel(self, upstream, **kwargs))

    # -- discovery, registration and reload ------------------------------------------------

    def reload(self) -> ReloadResult:
        """Load the bundle's newly published version, if any, and put it in force.

        The new version is verified and built aside, then swapped in at once. In-flight calls
        finish on the policies they started with. Upstreams whose resolved policy did not
        change keep their state (breaker, budget, outlier detector, balancer); changed ones
        start afresh. A bundle that fails verification, or no longer holds this service, is
        refused: the version in force stays, ``ReloadRefused`` is emitted and counted.
        """
        from meshspec_runtime.reload import apply_reload

        if self.bundle_path is None:
            raise MeshError(f"{self.describe()} was not opened from a path: nothing to reload")
        with self._swap:
            if self.closed:
                raise MeshClosedError(f"{self.describe()} is closed")
            try:
                loaded = load_service(self.bundle_path, self.service)
            except BundleError as error:
                return self._refuse(str(error))
            if loaded.mesh != self.mesh:
                return self._refuse(f"{self.bundle_path} now holds mesh {loaded.mesh!r}")
            if loaded.version == self.version:
                return ReloadResult(False, self.version)
            apply_reload(self, loaded)
            self.reloads["applied"] += 1
            return ReloadResult(True, self.version)

    def reload_on_sighup(self) -> None:
        """Reload on SIGHUP (main thread only: Python installs signal handlers there)."""
        if threading.current_thread() is not threading.main_thread():
            raise MeshError("reload_on_sighup() must be called from the main thread")

        def reload(signum: int, frame: object) -> None:
            if not self.closed:
                self.reload()

        signal.signal(signal.SIGHUP, reload)

    def _refuse(self, reason: str) -> ReloadResult:
        self.reloads["refused"] += 1
        self.events.emit(ReloadRefused(self.service, "", self.clock(), self.version, reason))
        return ReloadResult(False, self.version, reason)

    def _install(self, loaded: ServiceBundle, handles: dict[str, MeshUpstream]) -> None:
        """Put a reload's handles in force (called by ``reload.apply_reload`` under the swap
        lock); each handle already carries its new policies."""
        old = self.version
        self._upstreams = handles
        self._served = {
            name: (upstream.service, upstream.endpoints)
            for name, upstream in loaded.service.upstreams.items()
        }
        self.version = loaded.version
        self.protocol = loaded.service.protocol
        if self.discovery is not None:
            self.discovery.follow(self._fallbacks())
        logger.debug("%s: installed %s over %s", self, self.version, old)

    def _build_policies(self, name: str, upstream_policy: Any, endpoints: Any) -> UpstreamPolicies:
        policies = UpstreamPolicies(
            upstream_policy, endpoints, rng=self._rng, retry_predicate=self._retry_predicate
        )
        self._watch(name, policies)
        self._share_budget(name, policies)
        if self._collector is not None:
            self._collector.watch(MeshUpstream(self, name, policies, self._classifier))
        return policies

    def _new_handle(self, name: str, policies: UpstreamPolicies) -> MeshUpstream:
        return MeshUpstream(self, name, policies, self._classifier)

    def _fallbacks(self) -> dict[str, tuple[Endpoint, ...]]:
        """Upstream service -> the bundle's endpoint list for it (discovery's fallback)."""
        return {service: endpoints for service, endpoints in self._served.values()}

    def upstream_service(self, name: str) -> str:
        """The service upstream ``name`` calls (discovery looks it up by that name)."""
        return self._served.get(name, (name, ()))[0]

    def discovered(self, service: str, bundle_list: tuple[Endpoint, ...]) -> tuple[Endpoint, ...]:
        """The endpoints in force for upstream service ``service``."""
        found = self.discovery.endpoints(service) if self.discovery is not None else None
        return bundle_list if found is None else found

    def _start_discovery(self, discovery: Discovery) -> None:
        from meshspec_runtime.discovery.report import DiscoveryEvents
        from meshspec_runtime.discovery.watch import DiscoveryWatch

        reporter = DiscoveryEvents(self, discovery.describe())
        self.discovery = DiscoveryWatch(
            discovery,
            publish=self._publish_endpoints,
            report=reporter.report,
            clock=self.clock,
            rng=random.Random(self._rng.random()),
        )
        self.discovery.follow(self._fallbacks())

    def _publish_endpoints(self, service: str, endpoints: tuple[Endpoint, ...]) -> None:
        with self._swap:
            for name, (served, _) in self._served.items():
                if served == service:
                    self._upstreams[name].policies.set_endpoints(endpoints)

    def _start_registration(self, register: bool | RegisterAs, discovery: Any) -> None:
        from meshspec_runtime.discovery.register import start_registration

        self.registrar = start_registration(self, register, discovery)

    # -- events and lifecycle ---------------------------------------------------------------

    def on(self, event_type: type[E], handler: Handler[E]) -> None:
        """Call ``handler(event)`` for every event of ``event_type`` (or a subclass)."""
        self.events.subscribe(event_type, handler)

    def adopt(self, closeable: T) -> T:
        """Close ``closeable`` (a client handed out by an integration) with the mesh."""
        if self.closed:
            raise MeshClosedError(f"{self.describe()} is closed")
        self._closeables.append(closeable)
        return closeable

    def close(self) -> None:
        """Close every client handed out and stop exporting metrics; later calls raise
        ``MeshClosedError``. Idempotent. Asynchronous clients (httpx's ``AsyncClient``,
        aiohttp, ``grpc.aio``) can only be closed by :meth:`aclose`; ``close`` leaves them to
        their owner and says so."""
        closeables = self._shut()
        for closeable in closeables:
            if _is_async(closeable):
                logger.warning("%s: close() cannot close %r; use aclose()", self, closeable)
            else:
                closeable.close()

    async def aclose(self) -> None:
        """:meth:`close`, awaiting the asynchronous clients' own ``aclose``/``close``."""
        closeables = self._shut()
        for closeable in closeables:
            if _is_async(closeable):
                closer = getattr(closeable, "aclose", None) or closeable.close
                await closer()
            else:
                closeable.close()

    def _shut(self) -> list[Any]:
        """Mark the mesh closed, stop discovery, the bundle watch and the registration
        (deregistering), unregister its collector; the clients left to close."""
        self.closed = True
        if self._bundle_watch is not None:
            self._bundle_watch.stop()
            self._bundle_watch = None
        if self.discovery is not None:
            self.discovery.close()
        if self.registrar is not None:
            self.registrar.close()
            self.registrar = None
        if self._collector is not None and self._metrics is not None:
            self._metrics.unregister(self._collector)
            self._collector.close()
            self._collector = None
        if self._shared_budgets is not None:
            self._shared_budgets.close()
            self._shared_budgets = None
        closeables, self._closeables = self._closeables, []
        return closeables

    def __enter__(self) -> Mesh:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Mesh:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def describe(self) -> str:
        return f"mesh {self.mesh!r} (version {self.version}) for service {self.service!r}"

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self._upstreams)} upstreams"
        return f"<Mesh {self.mesh} {self.version} service={self.service} {state}>"

    def _share_budget(self, name: str, policies: UpstreamPolicies) -> None:
        """Put ``name``'s retry budget in the shared store when its scope is the service (a
        reload that changes the edge puts its new budget in place of the old one)."""
        config = policies.policy.retry.budget
        if config is None or config.scope is not BudgetScope.SERVICE:
            return
        caller, store = self.service, self._shared_budgets
        if store is None:
            logger.warning(
                "%s -> %s: retry budget has scope: service, but Mesh.open got no "
                "shared_budgets store: it counts this process alone",
                caller,
                name,
            )
            return
        emit = self.events.emit

        def report(old: SharingState, new: SharingState, at: float, members: int) -> None:
            if new == "local":
                emit(BudgetFellBack(caller, name, at, members))
            elif old != "shared" and new == "shared":
                emit(BudgetShared(caller, name, at, members))

        policies.budget = store.share(
            config, mesh=self.mesh, caller=caller, upstream=name, listener=report
        )

    def _watch(self, name: str, policies: UpstreamPolicies) -> None:
        """Report this upstream's breaker transitions and ejections as events."""
        emit, caller = self.events.emit, self.service
        if policies.breaker is not None:

            def transition(old: BreakerState, new: BreakerState, at: float) -> None:
                emit(BreakerTransition(caller, name, at, old, new))

            policies.breaker.add_listener(transition)

        def ejections(ejected: frozenset[str], returned: frozenset[str], at: float) -> None:
            if ejected:
                emit(EndpointsEjected(caller, name, at, tuple(sorted(ejected))))
            if returned:
                emit(EndpointsReturned(caller, name, at, tuple(sorted(returned))))

        policies.add_ejection_listener(ejections)


def _is_async(closeable: Any) -> bool:
    """Whether the client closes with a coroutine (``aclose``, or an async ``close``)."""
    return hasattr(closeable, "aclose") or inspect.iscoroutinefunction(
        getattr(closeable, "close", None)
    )


def _did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
