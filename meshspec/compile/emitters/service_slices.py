"""``services/<bucket>.json``: ``policy.json`` cut into small pieces, one per bucket of services.

A service that starts reads only the manifest, one index and its bucket (``load_service``), not
the whole mesh's policy document. A bucket (``ServiceBucket``) is a policy document restricted
to the services whose name hashes into it: their entries (``services``), the instances of every
service they call (``endpoints``) and every policy they use (``policies``), referenced as in
``policy.json``, plus the mesh, version (a placeholder, stamped like the others) and bucket
number. Every bucket is written, an empty one too, so every name leads to a file. Buckets are
read by the runtime only, so they are written compactly (no indentation).
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
        files[service_bucket_path(bucket)] = orjson.dumps(
            content, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
        )
    return files
