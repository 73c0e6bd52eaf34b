"""The JSON Schema of scenario documents, generated from :class:`Scenario`.

``schemas/scenario.schema.json`` is this function's output; a test fails when they drift.
Regenerate with ``meshspec schema --scenario -o schemas/scenario.schema.json``.
"""

from __future__ import annotations

import json
from typing import Any

from meshspec.sim.scenario import Scenario

SCHEMA_ID = "https://meshspec.dev/schemas/scenario.schema.json"
SCHEMA_FILE = "scenario.schema.json"


def scenario_schema() -> dict[str, Any]:
    schema = Scenario.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "meshspec failure scenario (apiVersion meshspec/v1, kind Scenario)",
        **{key: value for key, value in schema.items() if key != "title"},
    }


def schema_text() -> str:
    """The schema as stable JSON text (sorted keys, trailing newline)."""
    return json.dumps(scenario_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(schema_text(), end="")
