"""httpx's errors, raised by the real client against real loopback servers, and the outcome
each one is classified as."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from http_servers import Behaviour, LoopbackServer
from meshspec_runtime import Outcome, OutcomeKind, classify
from support import free_port


def _raised_sync(url: str, timeout: float) -> BaseException:
    with httpx.Client(transport=httpx.HTTPTransport(retries=0), timeout=timeout) as client:
        try:
            client.post(url, content=b"body").raise_for_status()
        except Exception as error:
            return error
    raise AssertionError(f"{url} answered without error")


def _raised_async(url: str, timeout: float) -> BaseException:
    async def request() -> BaseException:
        transport = httpx.AsyncHTTPTransport(retries=0)
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
            try:
                (await client.post(url, content=b"body")).raise_for_status()
            except Exception as error:
                return error
        raise AssertionError(f"{url} answered without error")

    return asyncio.run(request())


RAISERS = {"sync": _raised_sync, "async": _raised_async}


def _classified(error: object) -> Outcome:
    return classify(error, 0.01)


@pytest.mark.parametrize("mode", sorted(RAISERS))
def test_a_refused_connection_is_a_connect_failure(mode: str) -> None:
    error = RAISERS[mode](f"http://127.0.0.1:{free_port()}/", 1.0)
    assert isinstance(error, httpx.ConnectError)
    assert _classified(error).kind is OutcomeKind.CONNECT_FAILURE


@pytest.mark.parametrize(
    ("behaviour", "expected_error", "outcome"),
    [
        ("hang", httpx.ReadTimeout, OutcomeKind.TIMEOUT),
        ("slow", httpx.ReadTimeout, OutcomeKind.TIMEOUT),
        # the RST may land before the client reads (reset) or after (closed: no response)
        ("reset", (httpx.ReadError, httpx.RemoteProtocolError), OutcomeKind.RESET),
    ],
)
@pytest.mark.parametrize("mode", sorted(RAISERS))
def test_what_a_server_did_is_the_outcome(
    mode: str,
    behaviour: Behaviour,
    expected_error: type[Exception] | tuple[type[Exception], ...],
    outcome: OutcomeKind,
) -> None:
    with LoopbackServer(behaviour, delay=1.0) as server:
        error = RAISERS[mode](server.url, 0.2)
    assert isinstance(error, expected_error), repr(error)
    assert _classified(error).kind is outcome
    assert server.count == 1


@pytest.mark.parametrize("mode", sorted(RAISERS))
def test_raise_for_status_is_the_answer_it_carries(mode: str) -> None:
    with LoopbackServer(503) as server:
        error = RAISERS[mode](server.url, 1.0)
    assert isinstance(error, httpx.HTTPStatusError)
    made = _classified(error)
    assert (made.kind, made.status) == (OutcomeKind.ANSWER, 503)


def test_a_slow_answer_within_the_timeout_is_an_answer() -> None:
    with LoopbackServer("slow", delay=0.05) as server, httpx.Client(timeout=1.0) as client:
        response = client.get(server.url)
    made = _classified(response)
    assert (made.kind, made.status) == (OutcomeKind.ANSWER, 200)


def test_a_server_closing_without_an_answer_is_a_reset() -> None:
    error = httpx.RemoteProtocolError("Server disconnected without sending a response.")
    assert _classified(error).kind is OutcomeKind.RESET


def test_a_connect_timeout_is_a_connect_failure_and_a_local_protocol_error_is_not_retryable() -> (
    None
):
    # Neither can be provoked on loopback without a filtered port or a broken client.
    assert _classified(httpx.ConnectTimeout("timed out")).kind is OutcomeKind.CONNECT_FAILURE
    assert _classified(httpx.LocalProtocolError("bad header")).kind is OutcomeKind.ERROR
    assert _classified(httpx.PoolTimeout("no connection")).kind is OutcomeKind.TIMEOUT
