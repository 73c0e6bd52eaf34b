"""How grpc's errors map to outcomes: the real client (sync and grpc.aio) against real loopback
servers that refuse, hang, answer a status, and answer slowly."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import grpc.aio
import pytest
from grpc_servers import Behaviour, hang, serving, slow, status
from meshspec_runtime.drivers.classify import classify
from meshspec_runtime.policy.outcome import Outcome, OutcomeKind
from support import free_port

METHOD = "/shop.Payments/Charge"


@contextmanager
def target(behaviour: Behaviour | None) -> Iterator[str]:
    """host:port of a server behaving so (None: a port nothing listens on)."""
    if behaviour is None:
        yield f"127.0.0.1:{free_port()}"
        return
    with serving(behaviour) as (instance,):
        yield f"127.0.0.1:{instance.port}"


def sync_outcome(behaviour: Behaviour | None) -> tuple[Outcome, grpc.RpcError]:
    with (
        target(behaviour) as address,
        grpc.insecure_channel(address) as channel,
        pytest.raises(grpc.RpcError) as caught,
    ):
        channel.unary_unary(METHOD)(b"x", timeout=0.3)
    return classify(caught.value, 0.0), caught.value


def aio_outcome(behaviour: Behaviour | None) -> Outcome:
    async def call(address: str) -> Outcome:
        async with grpc.aio.insecure_channel(address) as channel:
            with pytest.raises(grpc.RpcError) as caught:
                await channel.unary_unary(METHOD)(b"x", timeout=0.3)
        return classify(caught.value, 0.0)

    with target(behaviour) as address:
        return asyncio.run(call(address))


CASES = [
    (None, OutcomeKind.CONNECT_FAILURE, None),
    (hang(), OutcomeKind.TIMEOUT, None),
    (slow(1.0), OutcomeKind.TIMEOUT, None),
    (status(grpc.StatusCode.UNAVAILABLE), OutcomeKind.ANSWER, "UNAVAILABLE"),
    (status(grpc.StatusCode.RESOURCE_EXHAUSTED), OutcomeKind.ANSWER, "RESOURCE_EXHAUSTED"),
]
IDS = ["refused", "hang", "slow", "unavailable-answer", "resource-exhausted-answer"]


@pytest.mark.parametrize(("behaviour", "kind", "grpc_status"), CASES, ids=IDS)
def test_sync_grpc_errors_are_classified(
    behaviour: Behaviour | None, kind: OutcomeKind, grpc_status: str | None
) -> None:
    made, _ = sync_outcome(behaviour)
    assert (made.kind, made.grpc_status) == (kind, grpc_status)


@pytest.mark.parametrize(("behaviour", "kind", "grpc_status"), CASES, ids=IDS)
def test_aio_grpc_errors_are_classified(
    behaviour: Behaviour | None, kind: OutcomeKind, grpc_status: str | None
) -> None:
    made = aio_outcome(behaviour)
    assert (made.kind, made.grpc_status) == (kind, grpc_status)


def test_what_grpc_reports_for_a_refused_port() -> None:
    """The connect-failure rule reads grpc's details: pin what grpc says."""
    _, error = sync_outcome(None)
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    details = (error.details() or "").lower()
    assert "failed to connect" in details or "connection refused" in details
