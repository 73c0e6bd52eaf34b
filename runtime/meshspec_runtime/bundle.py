"""Bundle models shared by the compiler (which writes them) and the runtime (which reads them).

A bundle is a folder: ``manifest.json`` names every other file with its sha256; ``policy.json``
holds, per service, its upstreams, their endpoints and their resolved policies.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from meshspec_runtime.policy.config import PolicyModel, UpstreamPolicy

BUNDLE_FORMAT: Literal[1] = 1
"""The bundle format this runtime reads and the compiler writes."""

Port = Annotated[int, Field(ge=1, le=65535)]


class Endpoint(PolicyModel):
    id: str
    """Stable identifier, ``<service>-<index>`` unless the spec names it."""
    address: str
    port: Port
    weight: Annotated[int, Field(ge=1)] = 1


class Upstream(PolicyModel):
    service: str
    endpoints: tuple[Endpoint, ...]
    policy: UpstreamPolicy


class ServicePolicies(PolicyModel):
    name: str
    protocol: Literal["http", "grpc", "tcp"] = "http"
    port: Port
    upstreams: dict[str, Upstream] = Field(default_factory=dict)


class PolicyDocument(PolicyModel):
    """The content of ``policy.json``."""

    format: Literal[1] = BUNDLE_FORMAT
    mesh: str
    version: str
    services: dict[str, ServicePolicies]


class Manifest(PolicyModel):
    """The content of ``manifest.json``."""

    format: int
    mesh: str
    version: str
    """Derived from the content: the same input gives the same version."""
    spec_digest: str
    generator: str
    """``meshspec <version>`` that wrote the bundle."""
    files: dict[str, str]
    """Path relative to the bundle (POSIX separators) -> sha256 hex digest."""
    dns_serial: int | None = None
    """SOA serial of the bundle's zone; the next compile into the same place continues from it."""
