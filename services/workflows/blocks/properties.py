"""Property definition: a value computed from a step's output (class names, counts, sizes, top class)."""

from __future__ import annotations

from typing import Any

from services.workflows import kinds, operations
from services.workflows.blocks.base import Block, Item, Param, RunContext


class PropertyDefinition(Block):
    id = "roboflow_core/property_definition@v1"
    aliases = ("PropertyDefinition", "PropertyExtraction")
    summary = ("Operations applied to 'data': DetectionsPropertyExtract (class_name, confidence, size, ...), "
               "SequenceLength (a count), ClassificationPropertyExtract (top_class, top_class_confidence, "
               "all_classes, all_confidences), DetectionsFilter.")
    params = {
        "data": Param("The value to compute from.", kinds=(kinds.ANY,), required=True),
        "operations": Param("The operations, applied in order.", literal=(list,), required=True),
    }
    outputs = {"output": kinds.ANY}

    def check(self, step: str, literals: dict[str, Any]) -> Any:
        return operations.operations(literals.get("operations"), f"step {step!r}: operations")

    async def run(self, ctx: RunContext, config: Any, items: list[Item]) -> list[Item]:
        return [{"output": config(item["data"], {})} for item in items]
