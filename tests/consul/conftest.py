"""Fixtures: one real Consul dev agent for the session, cleaned between tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from consul_agent import AgentStartError, ConsulAgent, running_agent
from consul_inputs import HAND_WRITTEN, ConsulInputs, compiled_inputs, load_inputs
from support import require_binary

# Where tools/consul/build.sh puts the binary.
TOOLS_BIN = (
    Path(os.environ.get("MESHSPEC_TOOLS", Path.home() / ".cache" / "meshspec-tools")) / "bin"
)

# Deleted in this order: a resolver may depend on its service's defaults (the protocol).
CONFIG_KINDS = ("service-resolver", "service-defaults")


@pytest.fixture(scope="session")
def consul_session_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsulAgent]:
    binary = require_binary("consul", extra_dirs=[TOOLS_BIN])
    try:
        with running_agent(binary, tmp_path_factory.mktemp("consul")) as agent:
            yield agent
    except AgentStartError as error:
        pytest.fail(str(error))


@pytest.fixture
def consul_agent(consul_session_agent: ConsulAgent) -> Iterator[ConsulAgent]:
    """The session's agent, emptied of the services and config entries a test left behind."""
    yield consul_session_agent
    client = consul_session_agent.client
    for service_id in client.agent.services():
        client.agent.service.deregister(service_id)
    for kind in CONFIG_KINDS:
        for entry in client.config.list(kind):
            client.config.delete(kind, entry["Name"])


@pytest.fixture(scope="module", params=["hand-written", "compiled"])
def consul_inputs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> ConsulInputs:
    """Consul inputs to feed the agent: the hand-written ones, then the compiler's."""
    if request.param == "hand-written":
        return load_inputs("hand-written", HAND_WRITTEN)
    return compiled_inputs(tmp_path_factory.mktemp("bundle") / "out")
