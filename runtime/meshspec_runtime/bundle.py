"""Bundle models shared by the compiler (which writes them) and the runtime (which reads them).

A bundle is a folder: ``manifest.json`` lists the index files ``index/<bucket>.json`` with
their sha256 and size, and each index (``BundleIndex``) lists the files whose path hashes into
its bucket the same way, so every file is verified and a reader that needs one file reads the
manifest and one index, whatever the size of the mesh. ``policy.json`` holds every service's
endpoints (once per service), every distinct resolved upstream policy (once, under a
content-derived id), and per service its upstreams as references to both;
``services/<bucket>.json`` (``ServiceBucket``) holds, for the services whose name hashes into
that bucket, each one's view, assembled, for a service that reads only its own.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from meshspec_runtime.layout import MAX_BUCKETS
from meshspec_runtime.policy.config import PolicyModel, UpstreamPolicy

BUNDLE_FORMAT: Literal[4] = 4
"""The bundle format the compiler writes. Format 4: the manifest lists bucketed index files,
which list every other file; service slices, Consul service definitions and Consul config
entries are grouped by bucket. (Format 3 wrote a file per config entry; format 2 listed every
file in the manifest and wrote a file per service for each.)"""

READABLE_FORMATS: tuple[int, ...] = (3, 4)
"""The formats this runtime reads: 3 and 4 differ only in the Consul config entries' files,
which the runtime never reads, so a service upgraded before the compiler (readers first) and
one pinned to a format 3 bundle both keep working."""

Format = Literal[3, 4]

Port = Annotated[int, Field(ge=1, le=65535)]


class Endpoint(PolicyModel):
    id: str
    """Stable identifier, ``<service>-<index>`` unless the spec names it."""
    address: str
    port: Port
    weight: Annotated[int, Field(ge=1)] = 1


Protocol = Literal["http", "grpc", "tcp"]


class Upstream(PolicyModel):
    """One upstream of a service, assembled: what ``policies_for`` applies."""

    service: str
    endpoints: tuple[Endpoint, ...]
    policy: UpstreamPolicy


class ServicePolicies(PolicyModel):
    """One service's upstreams, assembled from a ``PolicyDocument`` by ``.service(name)``."""

    name: str
    protocol: Protocol = "http"
    port: Port
    upstreams: dict[str, Upstream] = Field(default_factory=dict)


class UpstreamRef(PolicyModel):
    """One upstream as ``policy.json`` stores it: references, not copies."""

    service: str
    """The upstream service: a key of ``PolicyDocument.endpoints``."""
    policy: str
    """The resolved policy's id: a key of ``PolicyDocument.policies``."""


class ServiceEntry(PolicyModel):
    """One service as ``policy.json`` stores it."""

    name: str
    protocol: Protocol = "http"
    port: Port
    upstreams: dict[str, UpstreamRef] = Field(default_factory=dict)


class UnknownServiceError(KeyError):
    """``PolicyDocument.service(name)`` for a service the document does not hold."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class PolicyDocument(PolicyModel):
    """The content of ``policy.json``, normalised: each service's endpoints are listed once,
    each distinct resolved policy is stored once under a short content-derived id, and each
    service's upstreams reference both. ``service(name)`` assembles one service's view."""

    format: Format = BUNDLE_FORMAT
    mesh: str
    version: str
    endpoints: dict[str, tuple[Endpoint, ...]]
    """Service name -> its instances, in spec order."""
    policies: dict[str, UpstreamPolicy]
    """Policy id (the compiler uses the first 12 hex digits of the sha256 of the policy's
    canonical JSON) -> the fully resolved policy."""
    services: dict[str, ServiceEntry]

    @model_validator(mode="after")
    def _references_resolve(self) -> PolicyDocument:
        problem = self.dangling_reference()
        if problem is not None:
            raise ValueError(problem)
        return self

    def dangling_reference(self) -> str | None:
        """The first reference that does not resolve, as ``path: problem``; None when all do."""
        for key, entry in self.services.items():
            if entry.name != key:
                return f"services.{key}.name: is {entry.name!r}, not the service's key {key!r}"
            for upstream, ref in entry.upstreams.items():
                path = f"services.{key}.upstreams.{upstream}"
                if ref.service not in self.endpoints:
                    return f"{path}.service: no service {ref.service!r} in endpoints"
                if ref.policy not in self.policies:
                    return f"{path}.policy: no policy {ref.policy!r} in policies"
        return None

    def service(self, name: str) -> ServicePolicies:
        """``name``'s upstreams with their endpoints and policies, for ``policies_for``.

        Cheap: the endpoint tuples and policy objects are shared, not copied, and nothing is
        validated again (the document was). Raises ``UnknownServiceError`` (a KeyError) when
        the document holds no service ``name``.
        """
        entry = self.services.get(name)
        if entry is None:
            raise UnknownServiceError(
                f"no service {name!r} in the policy document of mesh {self.mesh!r} "
                f"(version {self.version})"
            )
        endpoints, policies = self.endpoints, self.policies
        return ServicePolicies.model_construct(
            name=entry.name,
            protocol=entry.protocol,
            port=entry.port,
            upstreams={
                upstream: Upstream.model_construct(
                    service=ref.service,
                    endpoints=endpoints[ref.service],
                    policy=policies[ref.policy],
                )
                for upstream, ref in entry.upstreams.items()
            },
        )


class ServiceBucket(PolicyModel):
    """The content of ``services/<bucket>.json``: ``policy.json`` restricted to the services
    whose name hashes into the bucket: their entries, the endpoints of every service they call
    and every policy they use, with the mesh and version it belongs to (so a bucket from
    another bundle is refused). ``load_service`` validates the header and what its own service
    uses only, and assembles its view as ``PolicyDocument.service(name)`` does."""

    format: Format = BUNDLE_FORMAT
    mesh: str
    version: str
    bucket: Annotated[int, Field(ge=0)]
    services: dict[str, ServiceEntry]
    endpoints: dict[str, tuple[Endpoint, ...]]
    policies: dict[str, UpstreamPolicy]


class FileEntry(PolicyModel):
    """One file as the manifest lists it."""

    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    size: Annotated[int, Field(ge=0)]
    """Bytes: a file of another size is refused without being read whole."""


Buckets = Annotated[int, Field(ge=1, le=MAX_BUCKETS)]


class BundleIndex(PolicyModel):
    """The content of ``index/<bucket>.json``: the files whose path hashes into the bucket."""

    format: Format = BUNDLE_FORMAT
    mesh: str
    version: str
    bucket: Annotated[int, Field(ge=0)]
    files: dict[str, FileEntry]
    """Path relative to the bundle (POSIX separators) -> its sha256 and size."""


class Manifest(PolicyModel):
    """The content of ``manifest.json``."""

    format: int
    mesh: str
    version: str
    """Derived from the content: the same input gives the same version."""
    spec_digest: str
    generator: str
    """``meshspec <version>`` that wrote the bundle."""
    indexes: Buckets = 1
    """How many index files there are (a power of two); a path is listed in the index its
    sha256 picks (``meshspec_runtime.layout.bucket_of``)."""
    buckets: Buckets = 1
    """How many service buckets there are (a power of two); a service's view is in the bucket
    its name's sha256 picks."""
    files: dict[str, FileEntry]
    """The index files, ``index/<n>.json`` for every n below ``indexes`` -> sha256 and size."""
    dns_serial: int | None = None
    """SOA serial of the bundle's zone; the next compile into the same place continues from it."""

    @model_validator(mode="after")
    def _counts_are_powers_of_two(self) -> Manifest:
        for field, count in (("indexes", self.indexes), ("buckets", self.buckets)):
            if count & (count - 1):
                raise ValueError(f"{field}: {count} is not a power of two")
        return self
