from __future__ import annotations

import pytest
from meshspec_runtime.bundle import Endpoint
from runtime_call_kit import endpoints


@pytest.fixture
def three() -> list[Endpoint]:
    return endpoints(3)
