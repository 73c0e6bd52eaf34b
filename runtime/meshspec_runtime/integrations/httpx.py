"""httpx: a transport that wraps a transport. (Being written: the contract is below.)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from meshspec_runtime.errors import Rule

if TYPE_CHECKING:
    import httpx

    from meshspec_runtime.mesh import Mesh


def client(mesh: Mesh, upstream: str | None, **kwargs: Any) -> httpx.Client:
    raise NotImplementedError


def async_client(mesh: Mesh, upstream: str | None, **kwargs: Any) -> httpx.AsyncClient:
    raise NotImplementedError


def error_rules() -> Mapping[type[BaseException], Rule]:
    return {}
