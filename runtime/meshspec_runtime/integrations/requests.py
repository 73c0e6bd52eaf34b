"""requests: an HTTPAdapter. (Being written: the contract is below.)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from meshspec_runtime.errors import Rule

if TYPE_CHECKING:
    import requests

    from meshspec_runtime.mesh import Mesh


def session(mesh: Mesh, upstream: str | None) -> requests.Session:
    raise NotImplementedError


def error_rules() -> Mapping[type[BaseException], Rule]:
    return {}
