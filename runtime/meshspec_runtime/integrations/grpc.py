"""grpcio (sync and ``grpc.aio``): channels whose calls go through the mesh, and server
interceptors that carry the caller's deadline into the calls made while serving.

A grpc channel is bound to one target and its interceptors cannot send a call elsewhere, so
:class:`MeshChannel` / :class:`MeshAioChannel` are channels in their own right: they keep one
real channel per endpoint (created on first use, grpc's own retries off, ``:authority`` the
upstream's name) and hand out multicallables that drive the call machine.

- Unary-unary calls get every policy: each attempt goes to the endpoint the balancer picked,
  with ``timeout=`` the attempt's timeout (grpc sends it as ``grpc-timeout``); the caller's own
  ``timeout=`` caps the whole call, retries included. On a hedged edge the attempts race, and
  the losers are cancelled (the sync channel makes each attempt a grpc future for that).
- Streaming calls (and ``future()``) make one attempt: the endpoint is picked through the
  policies (breaker, bulkhead, outlier ejection, balancer), the stream's final status is
  recorded when it ends, and nothing is retried or hedged (messages may already have been
  exchanged, and a stream's messages are handed over as they come: it cannot be raced).
  Their ``timeout=`` is the caller's, capped by the propagated deadline, not the per-try one.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

import grpc
import grpc.aio

from meshspec_runtime.deadline import MAX_TIMEOUT_MS, current_deadline, deadline_scope, time_left
from meshspec_runtime.drivers.classify import CallFailed
from meshspec_runtime.drivers.hedge_sync import on_abandon
from meshspec_runtime.errors import Rule, answer
from meshspec_runtime.mesh import MeshClosedError
from meshspec_runtime.policy.call import Attempt, Fail, FailReason
from meshspec_runtime.policy.outcome import Outcome, OutcomeKind

if TYPE_CHECKING:
    from meshspec_runtime.bundle import Endpoint
    from meshspec_runtime.mesh import Mesh, MeshUpstream

C = TypeVar("C")
T = TypeVar("T")

RETRIES_OFF: Final = ("grpc.enable_retries", 0)
"""grpc's own retries would multiply the mesh's."""

_NOT_CONNECTED: Final = ("failed to connect", "connection refused", "dns resolution failed")
"""Details of an UNAVAILABLE that grpc reports when the channel never connected."""


# -- errors ---------------------------------------------------------------------------------


class MeshRpcError(grpc.RpcError, CallFailed):
    """The mesh ended the call without an answer to return: a ``grpc.RpcError`` for existing
    handlers (``code()``: the last attempt's status; ``UNAVAILABLE`` for a refusal such as an
    open breaker, ``DEADLINE_EXCEEDED`` when time ran out) and a ``CallFailed`` with ``reason``
    and ``last``. The last attempt's exception is ``__cause__``."""

    def __init__(self, failed: CallFailed, cause: BaseException | None) -> None:
        CallFailed.__init__(self, Fail(failed.reason, failed.last), failed.result)
        self._cause = cause

    def code(self) -> grpc.StatusCode:
        code = _code_of(self._cause)
        if code is not None:
            return code
        timed_out = self.last is not None and self.last.kind is OutcomeKind.TIMEOUT
        if self.reason is FailReason.DEADLINE_EXCEEDED or timed_out:
            return grpc.StatusCode.DEADLINE_EXCEEDED
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return f"meshspec: {self}"

    def trailing_metadata(self) -> tuple[Any, ...]:
        return ()


def _code_of(error: BaseException | None) -> grpc.StatusCode | None:
    code = getattr(error, "code", None)
    if isinstance(error, grpc.RpcError) and callable(code):
        made = code()
        return made if isinstance(made, grpc.StatusCode) else None
    return None


def _rpc_error(error: BaseException, latency: float) -> Outcome | None:
    code = _code_of(error)
    if code is None:
        return None
    details = getattr(error, "details", None)
    return status_outcome(code, str(details() if callable(details) else ""), latency)


def status_outcome(code: grpc.StatusCode, details: str, latency: float) -> Outcome:
    """The outcome of an RPC that ended with ``code``."""
    if code is grpc.StatusCode.OK:
        return answer(latency)
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return Outcome(OutcomeKind.TIMEOUT, latency)
    if code is grpc.StatusCode.UNAVAILABLE and any(m in details.lower() for m in _NOT_CONNECTED):
        return Outcome(OutcomeKind.CONNECT_FAILURE, latency)
    return answer(latency, None, code.name)


def error_rules() -> Mapping[type[BaseException], Rule]:
    """Every grpc error status is an answer named by its code (``grpc:UNAVAILABLE``), except
    DEADLINE_EXCEEDED (a timeout) and an UNAVAILABLE for a channel that never connected
    (connect-failure). ``grpc.aio``'s ``AioRpcError`` is an ``RpcError`` too."""
    return {grpc.RpcError: _rpc_error}


# -- shared plumbing ------------------------------------------------------------------------


def _hash_key(upstream: MeshUpstream, metadata: Any) -> str | None:
    """The invocation metadata value the policy's ``load_balancer.hash_on`` names."""
    name = upstream.policies.policy.load_balancer.hash_on
    if name is None or not metadata:
        return None
    wanted = name.lower()
    for key, value in metadata:
        if str(key).lower() == wanted:
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return None


def _capped(timeout: float | None) -> float | None:
    """The caller's timeout, capped by the deadline of the request being served."""
    left = time_left()
    if left is None:
        return timeout
    left = max(left, 0.0)
    return left if timeout is None else min(timeout, left)


class _Endpoints(Generic[C]):
    """One real channel per endpoint (``address:port``), made on first use."""

    def __init__(self, make: Callable[[str], C]) -> None:
        self._make = make
        self._channels: dict[str, C] = {}
        self._lock = threading.Lock()

    def get(self, endpoint: Endpoint) -> C:
        target = f"{endpoint.address}:{endpoint.port}"
        channel = self._channels.get(target)
        if channel is None:
            with self._lock:
                channel = self._channels.get(target)
                if channel is None:
                    channel = self._channels[target] = self._make(target)
        return channel

    def take_all(self) -> list[C]:
        with self._lock:
            channels, self._channels = list(self._channels.values()), {}
        return channels


class _Base:
    """What the sync and asyncio channels share: the upstream, options and lifecycle."""

    def __init__(self, mesh: Mesh, upstream: str, options: Sequence[tuple[str, Any]]) -> None:
        self._mesh = mesh
        self._upstream = mesh.upstream(upstream)  # UnknownUpstreamError for a name not listed
        self.name = upstream
        self._options = [RETRIES_OFF, ("grpc.default_authority", upstream), *options]
        self._closed = False

    def _check_open(self) -> MeshUpstream:
        if self._closed:
            raise MeshClosedError(f"the grpc channel to {self.name!r} is closed")
        return self._upstream

    def _start_one(self, key: str | None) -> tuple[Any, Endpoint, float]:
        """A call through the policies that will make one attempt: (call, endpoint, start)."""
        if self._mesh.closed:
            raise MeshClosedError(f"{self._mesh.describe()} is closed: no call to {self.name!r}")
        now = time.monotonic()
        call = self._upstream.policies.start(now, key, current_deadline())
        step = call.next(now)
        if not isinstance(step, Attempt):
            assert isinstance(step, Fail)  # the first step is an attempt or a refusal
            failed = CallFailed(step)
            self._upstream.report_failure(failed)
            raise MeshRpcError(failed, None)
        return call, step.endpoint, now

    @staticmethod
    def _finish_one(call: Any, started: float, code: grpc.StatusCode, details: str) -> None:
        """Record a one-attempt call's outcome (its final status) and end it."""
        ended = time.monotonic()
        call.record(ended, status_outcome(code, details, ended - started))
        call.cancel(ended)  # no retry of a stream: release what a retry would have held


# -- sync -----------------------------------------------------------------------------------


class MeshChannel(_Base, grpc.Channel):
    """A ``grpc.Channel`` to an upstream: every call goes through its policies."""

    def __init__(
        self,
        mesh: Mesh,
        upstream: str,
        *,
        options: Sequence[tuple[str, Any]] = (),
        credentials: grpc.ChannelCredentials | None = None,
        compression: grpc.Compression | None = None,
    ) -> None:
        super().__init__(mesh, upstream, options)

        def make(target: str) -> grpc.Channel:
            if credentials is not None:
                return grpc.secure_channel(target, credentials, self._options, compression)
            return grpc.insecure_channel(target, self._options, compression)

        self._endpoints: _Endpoints[grpc.Channel] = _Endpoints(make)

    def endpoint_channel(self, endpoint: Endpoint) -> grpc.Channel:
        return self._endpoints.get(endpoint)

    def unary_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        return _UnaryUnary(self, method, request_serializer, response_deserializer)

    def unary_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        return _Streaming(self, "unary_stream", method, request_serializer, response_deserializer)

    def stream_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        return _Streaming(self, "stream_unary", method, request_serializer, response_deserializer)

    def stream_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        return _Streaming(self, "stream_stream", method, request_serializer, response_deserializer)

    def subscribe(self, callback: Any, try_to_connect: bool = False) -> None:
        raise NotImplementedError(
            "a mesh channel spans several endpoints: their availability is the policies' "
            "business (health, outlier detection), not one connectivity state"
        )

    def unsubscribe(self, callback: Any) -> None:
        raise NotImplementedError("a mesh channel has no connectivity state to unsubscribe from")

    def close(self) -> None:
        self._closed = True
        for channel in self._endpoints.take_all():
            channel.close()

    def __enter__(self) -> MeshChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open_one(
        self, key: str | None, start: Callable[[grpc.Channel], Any]
    ) -> Any:  # a grpc Call that is also a Future (or an iterator of responses)
        """One attempt through the policies (streams, ``future()``): pick, start, record the
        final status when the RPC ends."""
        self._check_open()
        call, endpoint, started = self._start_one(key)
        try:
            rpc = start(self.endpoint_channel(endpoint))
        except BaseException:
            call.cancel(time.monotonic())
            raise
        rpc.add_done_callback(
            lambda done: self._finish_one(call, started, done.code(), done.details() or "")
        )
        return rpc


class _UnaryUnary(grpc.UnaryUnaryMultiCallable):  # type: ignore[type-arg]
    def __init__(self, channel: MeshChannel, method: str, serializer: Any, deserializer: Any):
        self._channel = channel
        self._method = method
        self._serializer = serializer
        self._deserializer = deserializer

    def _target(self, endpoint: Endpoint) -> grpc.UnaryUnaryMultiCallable:  # type: ignore[type-arg]
        return self._channel.endpoint_channel(endpoint).unary_unary(
            self._method, self._serializer, self._deserializer
        )

    def __call__(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> Any:
        return self.with_call(request, timeout, metadata, credentials, wait_for_ready, compression)[
            0
        ]

    def with_call(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> tuple[Any, grpc.Call]:
        upstream = self._channel._check_open()
        hedged = upstream.policies.hedge is not None

        options = {
            "metadata": metadata,
            "credentials": credentials,
            "wait_for_ready": wait_for_ready,
            "compression": compression,
        }

        def attempt(endpoint: Endpoint, attempt_timeout: float) -> tuple[Any, grpc.Call]:
            target = self._target(endpoint)
            if hedged:  # a future, which the driver cancels if another attempt wins
                rpc = target.future(request, timeout=attempt_timeout, **options)
                on_abandon(rpc.cancel)
                return rpc.result(), rpc
            return target.with_call(request, timeout=attempt_timeout, **options)

        # a status not worth a retry is an answer: the driver raises grpc's own RpcError again
        with deadline_scope(timeout):
            try:
                return upstream.call(attempt, key=_hash_key(upstream, metadata))
            except CallFailed as failed:
                raise MeshRpcError(failed, failed.__cause__) from failed.__cause__

    def future(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> Any:
        """One attempt (a future cannot be retried behind the caller's back)."""
        return self._channel.open_one(
            _hash_key(self._channel._upstream, metadata),
            lambda channel: channel.unary_unary(
                self._method, self._serializer, self._deserializer
            ).future(
                request,
                timeout=_capped(timeout),
                metadata=metadata,
                credentials=credentials,
                wait_for_ready=wait_for_ready,
                compression=compression,
            ),
        )


class _Streaming:
    """unary_stream / stream_unary / stream_stream: one attempt through the policies."""

    def __init__(
        self, channel: MeshChannel, kind: str, method: str, serializer: Any, deserializer: Any
    ) -> None:
        self._channel = channel
        self._kind = kind
        self._method = method
        self._serializer = serializer
        self._deserializer = deserializer

    def _open(self, how: str, request: Any, timeout: float | None, metadata: Any, **kw: Any) -> Any:
        def start(channel: grpc.Channel) -> Any:
            multicallable = getattr(channel, self._kind)(
                self._method, self._serializer, self._deserializer
            )
            invoke = multicallable if how == "call" else getattr(multicallable, how)
            return invoke(request, timeout=_capped(timeout), metadata=metadata, **kw)

        return self._channel.open_one(_hash_key(self._channel._upstream, metadata), start)

    def __call__(
        self, request: Any, timeout: float | None = None, metadata: Any = None, **kw: Any
    ) -> Any:
        if self._kind == "stream_unary":
            return self.future(request, timeout, metadata, **kw).result()
        return self._open("call", request, timeout, metadata, **kw)

    def future(
        self, request: Any, timeout: float | None = None, metadata: Any = None, **kw: Any
    ) -> Any:
        return self._open("future", request, timeout, metadata, **kw)

    def with_call(
        self, request: Any, timeout: float | None = None, metadata: Any = None, **kw: Any
    ) -> tuple[Any, Any]:
        rpc = self.future(request, timeout, metadata, **kw)
        return rpc.result(), rpc


# -- grpc.aio -------------------------------------------------------------------------------


class MeshAioChannel(_Base, grpc.aio.Channel):
    """A ``grpc.aio.Channel`` to an upstream: every call goes through its policies."""

    def __init__(
        self,
        mesh: Mesh,
        upstream: str,
        *,
        options: Sequence[tuple[str, Any]] = (),
        credentials: grpc.ChannelCredentials | None = None,
        compression: grpc.Compression | None = None,
    ) -> None:
        super().__init__(mesh, upstream, options)

        def make(target: str) -> grpc.aio.Channel:
            if credentials is not None:
                return grpc.aio.secure_channel(target, credentials, self._options, compression)
            return grpc.aio.insecure_channel(target, self._options, compression)

        self._endpoints: _Endpoints[grpc.aio.Channel] = _Endpoints(make)
        self._recording: set[asyncio.Task[None]] = set()

    def endpoint_channel(self, endpoint: Endpoint) -> grpc.aio.Channel:
        return self._endpoints.get(endpoint)

    def unary_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        return _AioUnaryUnary(self, method, request_serializer, response_deserializer)

    def unary_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        return _AioStreaming(
            self, "unary_stream", method, request_serializer, response_deserializer
        )

    def stream_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        return _AioStreaming(
            self, "stream_unary", method, request_serializer, response_deserializer
        )

    def stream_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        return _AioStreaming(
            self, "stream_stream", method, request_serializer, response_deserializer
        )

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        raise NotImplementedError("a mesh channel spans several endpoints: no single state")

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        raise NotImplementedError("a mesh channel spans several endpoints: no single state")

    async def channel_ready(self) -> None:
        raise NotImplementedError("a mesh channel spans several endpoints: no single state")

    async def close(self, grace: float | None = None) -> None:
        self._closed = True
        for channel in self._endpoints.take_all():
            await channel.close(grace)

    async def __aenter__(self) -> MeshAioChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def open_one(self, key: str | None, start: Callable[[grpc.aio.Channel], Any]) -> Any:
        self._check_open()
        call, endpoint, started = self._start_one(key)
        try:
            rpc = start(self.endpoint_channel(endpoint))
        except BaseException:
            call.cancel(time.monotonic())
            raise

        async def record(finished: Any) -> None:  # a finished call's code() returns at once
            self._finish_one(call, started, await finished.code(), await finished.details() or "")

        def done(finished: Any) -> None:
            task = asyncio.get_running_loop().create_task(record(finished))
            self._recording.add(task)  # held until it ran: the loop keeps weak references
            task.add_done_callback(self._recording.discard)

        rpc.add_done_callback(done)
        return rpc


class _AioUnaryUnary(grpc.aio.UnaryUnaryMultiCallable):  # type: ignore[type-arg]
    def __init__(self, channel: MeshAioChannel, method: str, serializer: Any, deserializer: Any):
        self._channel = channel
        self._method = method
        self._serializer = serializer
        self._deserializer = deserializer

    def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> Any:
        """An awaitable of the response (an ``asyncio.Task``: the call starts now, as a grpc.aio
        call does, and ``cancel()`` cancels it)."""
        upstream = self._channel._check_open()
        return asyncio.ensure_future(
            self._call(
                upstream, request, timeout, metadata, credentials, wait_for_ready, compression
            )
        )

    async def _call(
        self,
        upstream: MeshUpstream,
        request: Any,
        timeout: float | None,
        metadata: Any,
        credentials: Any,
        wait_for_ready: bool | None,
        compression: Any,
    ) -> Any:

        async def attempt(endpoint: Endpoint, attempt_timeout: float) -> Any:
            target = self._channel.endpoint_channel(endpoint).unary_unary(
                self._method, self._serializer, self._deserializer
            )
            return await target(
                request,
                timeout=attempt_timeout,
                metadata=metadata,
                credentials=credentials,
                wait_for_ready=wait_for_ready,
                compression=compression,
            )

        # a status not worth a retry is an answer: the driver raises grpc's own error again
        with deadline_scope(timeout):
            try:
                return await upstream.call_async(attempt, key=_hash_key(upstream, metadata))
            except CallFailed as failed:
                raise MeshRpcError(failed, failed.__cause__) from failed.__cause__


class _AioStreaming:
    """grpc.aio unary_stream / stream_unary / stream_stream: one attempt through the policies;
    the returned call is grpc.aio's own (async iteration, ``await``, ``code()``...)."""

    def __init__(
        self, channel: MeshAioChannel, kind: str, method: str, serializer: Any, deserializer: Any
    ) -> None:
        self._channel = channel
        self._kind = kind
        self._method = method
        self._serializer = serializer
        self._deserializer = deserializer

    def __call__(
        self, request: Any = None, timeout: float | None = None, metadata: Any = None, **kw: Any
    ) -> Any:
        def start(channel: grpc.aio.Channel) -> Any:
            multicallable = getattr(channel, self._kind)(
                self._method, self._serializer, self._deserializer
            )
            return multicallable(request, timeout=_capped(timeout), metadata=metadata, **kw)

        return self._channel.open_one(_hash_key(self._channel._upstream, metadata), start)


# -- the integration's entry points (Mesh calls these) ---------------------------------------


def channel(mesh: Mesh, upstream: str, **kwargs: Any) -> grpc.Channel:
    """A :class:`MeshChannel`; ``kwargs``: ``options``, ``credentials``, ``compression``."""
    return MeshChannel(mesh, upstream, **kwargs)


def aio_channel(mesh: Mesh, upstream: str, **kwargs: Any) -> grpc.aio.Channel:
    """A :class:`MeshAioChannel`; ``kwargs`` as for :func:`channel`."""
    return MeshAioChannel(mesh, upstream, **kwargs)


# -- server side: the caller's deadline caps the calls made while serving --------------------

_NO_DEADLINE: Final = MAX_TIMEOUT_MS / 1000.0
"""grpc reports a call without a deadline as one far in the future."""


def _remaining(context: Any) -> float | None:
    left = context.time_remaining()
    return left if left is not None and left < _NO_DEADLINE else None


def _wrap_sync(behaviour: Callable[[Any, Any], T]) -> Callable[[Any, Any], T]:
    def serve(request: Any, context: Any) -> T:
        with deadline_scope(_remaining(context)):
            return behaviour(request, context)

    return serve


def _wrap_sync_stream(behaviour: Callable[[Any, Any], Iterator[T]]) -> Callable[[Any, Any], Any]:
    def serve(request: Any, context: Any) -> Iterator[T]:
        with deadline_scope(_remaining(context)):
            yield from behaviour(request, context)

    return serve


def _rebuild(handler: Any, wrap: Callable[[Any], Any], wrap_stream: Callable[[Any], Any]) -> Any:
    """The same method handler with its behaviour wrapped."""
    options = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(wrap(handler.unary_unary), **options)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(wrap_stream(handler.unary_stream), **options)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(wrap(handler.stream_unary), **options)
    return grpc.stream_stream_rpc_method_handler(wrap_stream(handler.stream_stream), **options)


class DeadlineServerInterceptor(grpc.ServerInterceptor):
    """Serve each RPC within a ``deadline_scope`` of the time its caller left
    (``grpc-timeout``), so mesh calls made while serving end by then."""

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        return _rebuild(handler, _wrap_sync, _wrap_sync_stream)


def _wrap_aio(behaviour: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(behaviour):

        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            with deadline_scope(_remaining(context)):
                async for response in behaviour(request, context):
                    yield response

        return stream

    async def serve(request: Any, context: Any) -> Any:
        with deadline_scope(_remaining(context)):
            result = behaviour(request, context)
            return await result if isinstance(result, Awaitable) else result

    return serve


class AioDeadlineServerInterceptor(grpc.aio.ServerInterceptor):
    """:class:`DeadlineServerInterceptor` for ``grpc.aio`` servers."""

    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return _rebuild(handler, _wrap_aio, _wrap_aio)
