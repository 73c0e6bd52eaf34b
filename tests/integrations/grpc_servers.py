"""Loopback gRPC servers for the grpc integration tests. No protoc: generic method handlers over
raw bytes (``request_deserializer=None``), every method of every service served by one
behaviour: echo, fail with a status, answer slowly, hang (until the caller gives up)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import grpc


@dataclass(frozen=True)
class Behaviour:
    kind: str
    """ok | status | slow | hang"""
    code: grpc.StatusCode = grpc.StatusCode.OK
    delay: float = 0.0


def ok() -> Behaviour:
    return Behaviour("ok")


def status(code: grpc.StatusCode) -> Behaviour:
    return Behaviour("status", code=code)


def slow(delay: float) -> Behaviour:
    return Behaviour("slow", delay=delay)


def hang() -> Behaviour:
    return Behaviour("hang")


@dataclass(frozen=True)
class Seen:
    method: str
    request: bytes
    metadata: dict[str, str]
    time_remaining: float | None
    """What the server's context said was left when the call arrived (from grpc-timeout)."""


Handler = Callable[[bytes, grpc.ServicerContext], bytes]


@dataclass
class Instance:
    port: int = 0
    requests: list[Seen] = field(default_factory=list)
    gave_up_after: list[float] = field(default_factory=list)
    """How long each hung call waited before its caller's deadline ended it."""


def no_deadline(left: float | None) -> float | None:
    return None if left is None or left > 1e8 else left


class _Generic(grpc.GenericRpcHandler):
    def __init__(self, instance: Instance, handle: Handler) -> None:
        self._instance = instance
        self._handle = handle

    def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler[Any, Any]:
        method = handler_call_details.method
        metadata = {k: str(v) for k, v in handler_call_details.invocation_metadata}

        def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
            left = no_deadline(context.time_remaining())
            self._instance.requests.append(Seen(method, request, metadata, left))
            return self._handle(request, context)

        def stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
            response = unary(request, context)
            for _ in range(3):
                yield response

        if method.endswith("/Stream"):
            return grpc.unary_stream_rpc_method_handler(stream)
        return grpc.unary_unary_rpc_method_handler(unary)


def behaving(instance: Instance, behaviour: Behaviour) -> Handler:
    def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
        if behaviour.kind == "status":
            context.abort(behaviour.code, f"told to fail with {behaviour.code.name}")
        elif behaviour.kind == "slow":
            time.sleep(behaviour.delay)
        elif behaviour.kind == "hang":
            started = time.monotonic()
            while context.is_active() and time.monotonic() - started < 5:
                time.sleep(0.005)
            instance.gave_up_after.append(time.monotonic() - started)
        return b"%d:" % instance.port + request

    return handle


@contextmanager
def grpc_server(
    handle: Callable[[Instance], Handler], interceptors: Sequence[grpc.ServerInterceptor] = ()
) -> Iterator[Instance]:
    """A sync grpc server on a free 127.0.0.1 port serving ``handle(instance)``; stopped on exit."""
    instance = Instance()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), interceptors=list(interceptors))
    server.add_generic_rpc_handlers([_Generic(instance, handle(instance))])
    instance.port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield instance
    finally:
        server.stop(grace=None).wait(5)


@contextmanager
def serving(*behaviours: Behaviour) -> Iterator[list[Instance]]:
    """One server per behaviour, stopped on exit."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(grpc_server(partial(behaving, behaviour=behaviour)))
            for behaviour in behaviours
        ]
