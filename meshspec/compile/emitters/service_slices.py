"""``services/<name>.json``: each service's own view of ``policy.json``, assembled.

A service that starts reads only the manifest and its slice (``load_service``), not the whole
mesh's policy document. A slice is what ``PolicyDocument.service(name)`` assembles, as a
``ServiceSlice``: the service's name, protocol and port, and each upstream with its endpoints
and its resolved policy, plus the mesh and version (a placeholder, stamped like the others).
"""

from __future__ import annotations

from typing import Any

from meshspec_runtime.bundle import BUNDLE_FORMAT
from meshspec_runtime.layout import service_slice_path

from meshspec.compile.jsonfile import dump_json


def slices(document: dict[str, Any]) -> dict[str, bytes]:
    """The slice of every service of ``document`` (``policy.json``'s data), by bundle path."""
    endpoints, policies = document["endpoints"], document["policies"]
    files: dict[str, bytes] = {}
    for name, entry in document["services"].items():
        upstreams = {
            upstream: {
                "service": ref["service"],
                "endpoints": endpoints[ref["service"]],
                "policy": policies[ref["policy"]],
            }
            for upstream, ref in entry["upstreams"].items()
        }
        files[service_slice_path(name)] = dump_json(
            {
                "format": BUNDLE_FORMAT,
                "mesh": document["mesh"],
                "version": document["version"],
                "service": {**entry, "upstreams": upstreams},
            }
        )
    return files
