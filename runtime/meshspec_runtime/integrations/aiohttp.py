"""aiohttp: a client middleware. (Being written: the contract is below.)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from meshspec_runtime.errors import Rule

if TYPE_CHECKING:
    import aiohttp

    from meshspec_runtime.mesh import Mesh


def session(mesh: Mesh, upstream: str | None, **kwargs: Any) -> aiohttp.ClientSession:
    raise NotImplementedError


def error_rules() -> Mapping[type[BaseException], Rule]:
    return {}
