from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_server import RedisServer
from support import missing, require_binary


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server for this test (Debian's ``redis-server`` package)."""
    binary = require_binary("redis-server", [Path("/usr/bin")])
    if importlib.util.find_spec("redis") is None:
        missing("redis-py is not installed (pip install 'meshspec-runtime[redis]')")
    server = RedisServer(binary, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
