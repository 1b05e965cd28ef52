"""Detections filter: keep the detections a statement holds for (class, confidence, size, ... and/or)."""

from __future__ import annotations

from typing import Any

from services.workflows import kinds, operations
from services.workflows.blocks.base import Block, Item, Param, RunContext
from services.workflows.data import Detections
from services.workflows.definition import InvalidWorkflow


class DetectionsFilter(Block):
    id = "roboflow_core/detections_filter@v1"
    aliases = ("DetectionsFilter", "DetectionFilter")
    summary = ("The detections for which a statement holds: operations [{type: DetectionsFilter, filter_operation: "
               "<statement>}], each detection as operand '_' (ExtractDetectionProperty: class_name, confidence, "
               "width, height, size, ...), other operands from operations_parameters.")
    params = {
        "predictions": Param("The detections to filter.", kinds=kinds.DETECTIONS, required=True),
        "operations": Param("The operations (usually one DetectionsFilter).", literal=(list,), required=True),
        "operations_parameters": Param("Named values the statements may use.", kinds=(kinds.ANY,),
                                       literal=(str, int, float, bool, list), shape="mapping", default={}),
    }
    image_free = True  # predictions and values only
    outputs = {"predictions": "=predictions"}

    def check(self, step: str, literals: dict[str, Any]) -> Any:
        return operations.operations(literals.get("operations"), f"step {step!r}: operations")

    async def run(self, ctx: RunContext, config: Any, items: list[Item]) -> list[Item]:
        out = []
        for item in items:
            result = config(item["predictions"], dict(item.get("operations_parameters") or {}))
            if not isinstance(result, Detections):
                raise InvalidWorkflow("operations must end in detections (use a DetectionsFilter operation)")
            out.append({"predictions": result})
        return out
