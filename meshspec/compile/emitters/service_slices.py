"""``services/<bucket>.json``: each service's own view of ``policy.json``, grouped by bucket.

A service that starts reads only the manifest, one index and its bucket (``load_service``), not
the whole mesh's policy document. A view is what ``PolicyDocument.service(name)`` assembles:
the service's name, protocol and port, and each upstream with its endpoints and its resolved
policy. A bucket (``ServiceBucket``) holds the views of the services whose name hashes into it,
plus the mesh, version (a placeholder, stamped like the others) and bucket number. Every bucket
is written, an empty one too, so every name leads to a file. Buckets are read by the runtime
only, so they are written compactly (no indentation): a third of the bytes to write and read.
"""

from __future__ import annotations

from typing import Any

import orjson
from meshspec_runtime.bundle import BUNDLE_FORMAT
from meshspec_runtime.layout import bucket_of, service_bucket_path


def buckets(document: dict[str, Any], count: int) -> dict[str, bytes]:
    """Every service bucket of ``document`` (``policy.json``'s data), by bundle path."""
    endpoints, policies = document["endpoints"], document["policies"]
    grouped: list[dict[str, Any]] = [{} for _ in range(count)]
    for name, entry in document["services"].items():
        grouped[bucket_of(name, count)][name] = {
            **entry,
            "upstreams": {
                upstream: {
                    "service": ref["service"],
                    "endpoints": endpoints[ref["service"]],
                    "policy": policies[ref["policy"]],
                }
                for upstream, ref in entry["upstreams"].items()
            },
        }
    return {
        service_bucket_path(bucket): orjson.dumps(
            {
                "format": BUNDLE_FORMAT,
                "mesh": document["mesh"],
                "version": document["version"],
                "bucket": bucket,
                "services": services,
            },
            option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE,
        )
        for bucket, services in enumerate(grouped)
    }
