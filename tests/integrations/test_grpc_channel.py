"""mesh.grpc_channel(): a real grpc client against real loopback grpc servers via a bundle."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_servers import hang, ok, serving, status
from mesh_kit import DEFAULT_POLICY, compile_mesh
from meshspec_runtime import CallFailed, Mesh
from meshspec_runtime.events import EndpointsEjected
from meshspec_runtime.integrations.grpc import MeshRpcError
from meshspec_runtime.mesh import MeshClosedError, UnknownUpstreamError
from meshspec_runtime.policy.call import FailReason
from meshspec_runtime.policy.outcome import OutcomeKind
from support import free_port

PER_TRY = 0.3
POLICY: dict[str, Any] = {
    **DEFAULT_POLICY,
    "retry": {
        # 3 bad instances x 2 failures each (the outlier threshold): 7 attempts always reach
        # the good one, whatever order round robin visits them in
        "attempts": 7,
        "per_try_timeout": f"{int(PER_TRY * 1000)}ms",
        "backoff": {"base": "1ms", "max": "5ms"},
        "on": ["connect-failure", "timeout", "reset", "grpc:UNAVAILABLE"],
    },
    "outlier_detection": {
        "consecutive_failures": 2,
        "base_ejection": "30s",
        "max_ejected": "75%",
    },
    "load_balancer": {"strategy": "round_robin", "panic_threshold": 0},
    "circuit_breaker": {"failure_on": ["connect-failure", "timeout", "reset", "grpc:UNAVAILABLE"]},
}
METHOD = "/shop.Payments/Charge"
GRPC_ROUNDING = 0.02
"""grpc-timeout is sent rounded up to its unit and turned into a deadline on the server's clock."""


def open_mesh(tmp_path: Path, ports: list[int], policy: dict[str, Any] = POLICY) -> Mesh:
    bundle = compile_mesh(tmp_path, {"payments": ports}, policy=policy, protocol="grpc")
    return Mesh.open(bundle, service="checkout")


def test_the_user_story_dead_hung_and_unavailable_instances_are_retried_and_ejected(
    tmp_path: Path,
) -> None:
    with serving(hang(), status(grpc.StatusCode.UNAVAILABLE), ok()) as (hung, failing, healthy):
        dead = free_port()
        mesh = open_mesh(tmp_path, [dead, hung.port, failing.port, healthy.port])
        ids = {e.port: e.id for e in mesh.upstream("payments").endpoints}
        ejected: list[str] = []
        mesh.on(EndpointsEjected, lambda event: ejected.extend(event.endpoints))
        with mesh:
            charge = mesh.grpc_channel("payments").unary_unary(METHOD)
            for number in range(20):
                assert charge(b"order-%d" % number) == b"%d:order-%d" % (healthy.port, number)
            policies = mesh.upstream("payments").policies
            assert policies.outlier is not None
            still_out = policies.outlier.ejected(time.monotonic())
    expected = {ids[dead], ids[hung.port], ids[failing.port]}
    assert set(ejected) == expected
    assert still_out == expected
    assert len(healthy.requests) == 20
    assert hung.requests and failing.requests
    for seen in hung.requests + failing.requests + healthy.requests:
        assert (
            seen.time_remaining is not None and 0 < seen.time_remaining <= PER_TRY + GRPC_ROUNDING
        )
        assert seen.method == METHOD
    # a retried request is the same bytes on every instance it reached
    sent = {seen.request for seen in healthy.requests}
    assert {seen.request for seen in hung.requests + failing.requests} <= sent


def test_a_status_not_retried_is_raised_as_grpc_raises_it(tmp_path: Path) -> None:
    with serving(status(grpc.StatusCode.NOT_FOUND)) as (missing,):
        mesh = open_mesh(tmp_path, [missing.port])
        with mesh, pytest.raises(grpc.RpcError) as caught:
            mesh.grpc_channel("payments").unary_unary(METHOD)(b"x")
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    assert not isinstance(caught.value, CallFailed)  # an answer, not a mesh failure
    assert len(missing.requests) == 1


def test_no_answer_raises_an_rpc_error_that_is_a_call_failed(tmp_path: Path) -> None:
    mesh = open_mesh(tmp_path, [free_port(), free_port()])
    with mesh, pytest.raises(grpc.RpcError) as caught:
        mesh.grpc_channel("payments").unary_unary(METHOD)(b"x")
    failed = caught.value
    assert isinstance(failed, MeshRpcError) and isinstance(failed, CallFailed)
    assert failed.reason is FailReason.ATTEMPTS_EXHAUSTED
    assert failed.last is not None and failed.last.kind is OutcomeKind.CONNECT_FAILURE
    assert failed.code() is grpc.StatusCode.UNAVAILABLE
    assert isinstance(failed.__cause__, grpc.RpcError)


def test_the_callers_timeout_caps_the_call_and_reads_as_deadline_exceeded(
    tmp_path: Path,
) -> None:
    with serving(hang(), hang()) as instances:
        mesh = open_mesh(tmp_path, [instance.port for instance in instances])
        started = time.monotonic()
        with mesh, pytest.raises(MeshRpcError) as caught:
            mesh.grpc_channel("payments").unary_unary(METHOD)(b"x", timeout=0.5)
        took = time.monotonic() - started
    assert took < 0.5 + 0.25  # not 7 x 300 ms
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    seen = [s.time_remaining for i in instances for s in i.requests]
    assert seen and all(left is not None and left <= PER_TRY + GRPC_ROUNDING for left in seen)


def test_an_open_breaker_refuses_without_an_attempt(tmp_path: Path) -> None:
    policy = {
        **POLICY,
        "retry": {**POLICY["retry"], "attempts": 1},
        "circuit_breaker": {"mode": "consecutive", "consecutive_failures": 2, "open_for": "30s"},
    }
    mesh = open_mesh(tmp_path, [free_port()], policy)
    with mesh:
        charge = mesh.grpc_channel("payments").unary_unary(METHOD)
        reasons = []
        for _ in range(3):
            with pytest.raises(MeshRpcError) as caught:
                charge(b"x")
            reasons.append(caught.value.reason)
    assert reasons[-1] is FailReason.BREAKER_OPEN
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert caught.value.__cause__ is None


def test_the_hash_on_metadata_keys_the_pick(tmp_path: Path) -> None:
    policy = {**POLICY, "load_balancer": {"strategy": "ring_hash", "hash_on": "x-user"}}
    with serving(ok(), ok(), ok()) as instances:
        mesh = open_mesh(tmp_path, [i.port for i in instances], policy)
        with mesh:
            charge = mesh.grpc_channel("payments").unary_unary(METHOD)
            for user in ("ann", "bob", "cy", "dee"):
                for _ in range(3):
                    charge(b"x", metadata=(("x-user", user),))
    for instance in instances:
        users = [seen.metadata["x-user"] for seen in instance.requests]
        assert all(users.count(user) == 3 for user in users)
    assert sum(len(i.requests) for i in instances) == 12


def test_a_stream_goes_to_a_picked_endpoint_once_and_holds_its_permit_until_it_ends(
    tmp_path: Path,
) -> None:
    with serving(ok(), ok()) as instances:
        mesh = open_mesh(tmp_path, [i.port for i in instances], {**POLICY, "concurrency_limit": 1})
        with mesh:
            stream = mesh.grpc_channel("payments").unary_stream("/shop.Payments/Stream")
            first = stream(b"s", timeout=2)
            with pytest.raises(MeshRpcError) as caught:  # the open stream holds the one permit
                stream(b"s", timeout=2)
            assert caught.value.reason is FailReason.CONCURRENCY_LIMIT
            responses = list(first)
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:  # the done callback runs on grpc's thread
                try:
                    again = list(stream(b"s", timeout=2))
                    break
                except MeshRpcError:
                    time.sleep(0.01)
    assert len(responses) == 3 and len(set(responses)) == 1
    assert len(again) == 3  # the permit came back when the first stream ended
    assert sum(len(i.requests) for i in instances) == 2
    for seen in (s for i in instances for s in i.requests):
        # a stream's timeout is the caller's, not the per-try one
        assert seen.time_remaining is not None
        assert PER_TRY < seen.time_remaining <= 2 + GRPC_ROUNDING


def test_misuse_gets_clear_errors(tmp_path: Path) -> None:
    mesh = open_mesh(tmp_path, [free_port()])
    with pytest.raises(UnknownUpstreamError, match="did you mean 'payments'"):
        mesh.grpc_channel("paymnts")
    channel = mesh.grpc_channel("payments")
    channel.close()
    with pytest.raises(MeshClosedError, match="channel to 'payments' is closed"):
        channel.unary_unary(METHOD)(b"x")
    other = mesh.grpc_channel("payments")
    mesh.close()
    with pytest.raises(MeshClosedError):
        other.unary_unary(METHOD)(b"x")
