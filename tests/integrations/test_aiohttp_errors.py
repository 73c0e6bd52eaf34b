"""How aiohttp's exceptions map to outcomes: the real client against real loopback servers that
refuse, reset, hang, answer 503 and answer slowly; then the same seen through a mesh."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp_servers import Behaviour, hang, ok, reset, serving, slow, status
from mesh_kit import DEFAULT_POLICY, compile_mesh
from meshspec_runtime import Mesh
from meshspec_runtime.drivers.classify import classify
from meshspec_runtime.integrations.aiohttp import MeshClientError
from meshspec_runtime.policy.call import FailReason
from meshspec_runtime.policy.outcome import Outcome, OutcomeKind
from support import free_port


async def raised(url: str, timeout: aiohttp.ClientTimeout) -> BaseException:
    async with aiohttp.ClientSession(timeout=timeout, raise_for_status=True) as session:
        try:
            async with session.get(url) as response:
                await response.read()
        except Exception as error:
            return error
    raise AssertionError(f"GET {url} did not fail")


async def outcome_of(behaviour: Behaviour | None, timeout: aiohttp.ClientTimeout) -> Outcome:
    """The outcome of a plain aiohttp GET to a server behaving so (None: a refused port)."""
    if behaviour is None:
        return classify(await raised(f"http://127.0.0.1:{free_port()}/", timeout), 0.0)
    async with serving(behaviour) as (instance,):
        error = await raised(f"http://127.0.0.1:{instance.port}/", timeout)
        return classify(error, 0.0)


DEFAULT = aiohttp.ClientTimeout(total=5)


@pytest.mark.parametrize(
    ("behaviour", "timeout", "kind", "status_code"),
    [
        (None, DEFAULT, OutcomeKind.CONNECT_FAILURE, None),
        (reset(), DEFAULT, OutcomeKind.RESET, None),
        (hang(), aiohttp.ClientTimeout(sock_read=0.2), OutcomeKind.TIMEOUT, None),
        (slow(1.0), aiohttp.ClientTimeout(total=0.2), OutcomeKind.TIMEOUT, None),
        (status(503), DEFAULT, OutcomeKind.ANSWER, 503),
    ],
    ids=["refused", "reset", "hang-sock-read", "slow-total", "503-raise-for-status"],
)
def test_aiohttp_errors_are_classified(
    behaviour: Behaviour | None,
    timeout: aiohttp.ClientTimeout,
    kind: OutcomeKind,
    status_code: int | None,
) -> None:
    made = asyncio.run(outcome_of(behaviour, timeout))
    assert made.kind is kind
    assert made.status == status_code


NO_RETRY: dict[str, Any] = {
    **DEFAULT_POLICY,
    "retry": {**DEFAULT_POLICY["retry"], "per_try_timeout": "200ms", "attempts": 1},
}


@pytest.mark.parametrize(
    ("behaviour", "kind"),
    [
        (None, OutcomeKind.CONNECT_FAILURE),
        (reset(), OutcomeKind.RESET),
        (hang(), OutcomeKind.TIMEOUT),
        (slow(1.0), OutcomeKind.TIMEOUT),
    ],
    ids=["refused", "reset", "hang", "slow"],
)
def test_the_mesh_sees_each_failure_as_its_outcome(
    tmp_path: Path, behaviour: Behaviour | None, kind: OutcomeKind
) -> None:
    async def scenario() -> MeshClientError:
        async with serving(behaviour or ok()) as (instance,):
            port = instance.port if behaviour is not None else free_port()
            bundle = compile_mesh(tmp_path, {"payments": [port]}, policy=NO_RETRY)
            mesh = Mesh.open(bundle, service="checkout")
            async with mesh, mesh.aiohttp_session("payments") as session:
                with pytest.raises(MeshClientError) as caught:
                    await session.get("/")
                return caught.value

    failed = asyncio.run(scenario())
    assert failed.reason is FailReason.ATTEMPTS_EXHAUSTED  # retryable, but one attempt only
    assert failed.last is not None and failed.last.kind is kind


def test_a_slow_answer_within_the_per_try_timeout_is_returned(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, str, int]:
        async with serving(slow(0.05)) as (instance,):
            bundle = compile_mesh(tmp_path, {"payments": [instance.port]}, policy=NO_RETRY)
            mesh = Mesh.open(bundle, service="checkout")
            async with (
                mesh,
                mesh.aiohttp_session("payments") as session,
                session.get("/") as response,
            ):
                return response.status, await response.text(), instance.port

    code, text, port = asyncio.run(scenario())
    assert (code, text) == (200, f"slow {port}")
