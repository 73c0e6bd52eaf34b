"""``services/<bucket>.json``: ``policy.json`` cut into small pieces, one per bucket of services.

A service that starts reads only the manifest, one index and its bucket (``load_service``), not
the whole mesh's policy document. A bucket (``ServiceBucket``) is a policy document restricted
to the services whose name hashes into it: their entries (``services``), the instances of every
service they call (``endpoints``) and every policy they use (``policies``), referenced as in
``policy.json``, plus the mesh, version (a placeholder, stamped like the others) and bucket
number. Every bucket is written, an empty one too, so every name leads to a file. Buckets are
written compactly, as every JSON file of the bundle but the manifest is.
"""

from __future__ import annotations

from typing import Any

from meshspec_runtime.bundle import BUNDLE_FORMAT
from meshspec_runtime.layout import bucket_of, service_bucket_path

from meshspec.compile.jsonfile import dump_json


def buckets(document: dict[str, Any], count: int) -> dict[str, bytes]:
    """Every service bucket of ``document`` (``policy.json``'s data), by bundle path."""
    endpoints, policies = document["endpoints"], document["policies"]
    grouped: list[dict[str, Any]] = [{} for _ in range(count)]
    for name, entry in document["services"].items():
        grouped[bucket_of(name, count)][name] = entry
    files: dict[str, bytes] = {}
    for bucket, services in enumerate(grouped):
        refs = [ref for entry in services.values() for ref in entry["upstreams"].values()]
        content = {
            "format": BUNDLE_FORMAT,
            "mesh": document["mesh"],
            "version": document["version"],
            "bucket": bucket,
            "services": services,
            "endpoints": {ref["service"]: endpoints[ref["service"]] for ref in refs},
            "policies": {ref["policy"]: policies[ref["policy"]] for ref in refs},
        }
        files[service_bucket_path(bucket)] = dump_json(content)
    return files
