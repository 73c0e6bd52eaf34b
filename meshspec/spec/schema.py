"""The JSON Schema of mesh spec documents, generated from :class:`MeshSpec`.

The schema checks shapes, names, units and ranges; rules that need more than one value
(upstreams naming declared services, cycles, duplicates, timeouts after merging...) are left
to the semantic pass (docs/spec.md lists them).
"""

from __future__ import annotations

import json
from typing import Any

from meshspec.spec.models import MeshSpec

SCHEMA_ID = "urn:meshspec:schema:meshspec-v1"
SCHEMA_FILE = "meshspec.schema.json"


def _closed_maps(node: Any) -> None:
    """Maps with constrained keys (service names, meta keys) allow no other key."""
    if isinstance(node, dict):
        if "patternProperties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _closed_maps(value)
    elif isinstance(node, list):
        for value in node:
            _closed_maps(value)


def mesh_schema() -> dict[str, Any]:
    schema = MeshSpec.model_json_schema(by_alias=True, mode="validation")
    _closed_maps(schema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "meshspec mesh spec (apiVersion meshspec/v1)",
        **{key: value for key, value in schema.items() if key != "title"},
    }


def schema_text() -> str:
    """The schema as stable JSON text (sorted keys, trailing newline)."""
    return json.dumps(mesh_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
