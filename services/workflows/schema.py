"""The definition's JSON Schema (GET /workflows/definition/schema), built from the blocks' manifests."""

from __future__ import annotations

from typing import Any

from services.workflows import blocks
from services.workflows.definition import IMAGE_INPUTS, PARAMETER_INPUTS, VERSIONS

NAME = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_\\-]{0,63}$"}


def _step_schema(block: blocks.Block) -> dict[str, Any]:
    props: dict[str, Any] = {"type": {"enum": [block.id, *block.aliases]}, "name": NAME}
    for name, param in block.params.items():
        props[name] = {"description": param.doc}
    for name in block.ignored:
        props[name] = {"description": "Accepted and ignored."}
    required = ["type", "name", *(n for n, p in block.params.items() if p.required)]
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False,
            "description": block.summary}


def definition_schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Workflow definition",
        "type": "object",
        "required": ["version", "inputs", "steps", "outputs"],
        "additionalProperties": False,
        "properties": {
            "version": {"enum": list(VERSIONS)},
            "inputs": {"type": "array", "items": {"type": "object", "required": ["type", "name"], "properties": {
                "type": {"enum": [*IMAGE_INPUTS, *PARAMETER_INPUTS]}, "name": NAME, "default_value": {}}}},
            "steps": {"type": "array", "items": {"oneOf": [_step_schema(b) for b in blocks.ALL]}},
            "outputs": {"type": "array", "items": {"type": "object", "required": ["name", "selector"], "properties": {
                "type": {"const": "JsonField"}, "name": NAME, "selector": {"type": "string", "pattern": "^\\$"},
                "coordinates_system": {"enum": ["own", "parent"]}}}},
        },
    }
