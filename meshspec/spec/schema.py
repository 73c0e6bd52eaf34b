"""The JSON Schema of mesh spec documents, generated from :class:`MeshSpec`.

The schema checks shapes, names, units and ranges; rules that need more than one value
(upstreams naming declared services, cycles, duplicates, timeouts after merging...) are left
to the semantic pass (docs/spec.md lists them).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from meshspec.spec.models import OFF, OFF_TAG, VALUE_TAG, MeshSpec

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


def _unless(literals: list[Any], schema: JsonSchemaValue) -> JsonSchemaValue:
    """``literals`` are accepted as they are; any other value must match ``schema``."""
    return {"if": {"enum": literals}, "else": schema}


def _is_unless(schema: JsonSchemaValue) -> bool:
    return set(schema) == {"if", "else"} and set(schema["if"]) == {"enum"}


class _SpecSchemaGenerator(GenerateJsonSchema):
    """Writes "X or off" and "a settings mapping or null" as ``if`` the literal ``else`` X,
    where pydantic writes ``anyOf``/``oneOf``.

    A mapping with a typo fails every alternative of an ``anyOf``, so validators and editors
    report the whole mapping (``... is not valid under any of the given schemas``, or ``is not
    of type 'null'``); checked against X alone, the error names the field itself (``'atempts'
    was unexpected``, at ``retry``). The accepted values are the same.
    """

    def tagged_union_schema(self, schema: core_schema.TaggedUnionSchema) -> JsonSchemaValue:
        choices = schema["choices"]
        if set(choices) == {VALUE_TAG, OFF_TAG}:
            return _unless([OFF], self.generate_inner(choices[VALUE_TAG]))
        return super().tagged_union_schema(schema)

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        inner = self.generate_inner(schema["schema"])
        if _is_unless(inner):  # X or off, or null (absent: inherit)
            return _unless([*inner["if"]["enum"], None], inner["else"])
        if set(inner) == {"$ref"}:  # a settings mapping (a model), or null
            return _unless([None], inner)
        return self.get_union_of_schemas([inner, {"type": "null"}])


def mesh_schema() -> dict[str, Any]:
    schema = MeshSpec.model_json_schema(
        by_alias=True, mode="validation", schema_generator=_SpecSchemaGenerator
    )
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
