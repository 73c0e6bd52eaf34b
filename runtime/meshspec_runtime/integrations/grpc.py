"""grpcio: channels with interceptors. (Being written: the contract is below.)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from meshspec_runtime.errors import Rule

if TYPE_CHECKING:
    import grpc
    import grpc.aio

    from meshspec_runtime.mesh import Mesh


def channel(mesh: Mesh, upstream: str, **kwargs: Any) -> grpc.Channel:
    raise NotImplementedError


def aio_channel(mesh: Mesh, upstream: str, **kwargs: Any) -> grpc.aio.Channel:
    raise NotImplementedError


def error_rules() -> Mapping[type[BaseException], Rule]:
    return {}
