"""Detection offset: every box grown by a margin (clipped to its image)."""

from __future__ import annotations

from typing import Any

from services.workflows import kinds
from services.workflows.blocks.base import Block, Item, Param, RunContext
from services.workflows.data import xyxy


class DetectionOffset(Block):
    id = "roboflow_core/detection_offset@v1"
    aliases = ("DetectionOffset",)
    summary = "Each box grown by offset_width / offset_height pixels in all (half on each side), clipped to the image."
    params = {
        "predictions": Param("The detections to grow.", kinds=kinds.DETECTIONS, required=True),
        "offset_width": Param("Pixels added to each box's width.", literal=(int,), required=True),
        "offset_height": Param("Pixels added to each box's height.", literal=(int,), required=True),
    }
    image_free = True  # predictions and values only
    outputs = {"predictions": "=predictions"}

    async def run(self, ctx: RunContext, config: Any, items: list[Item]) -> list[Item]:
        out = []
        for item in items:
            d = item["predictions"]
            dw, dh = float(item["offset_width"]), float(item["offset_height"])
            w, h = d.image.width, d.image.height
            grown = []
            for p in d.predictions:
                x0, y0, x1, y1 = xyxy(p)
                x0, y0 = max(0.0, x0 - dw / 2), max(0.0, y0 - dh / 2)
                x1, y1 = min(float(w or x1 + dw), x1 + dw / 2), min(float(h or y1 + dh), y1 + dh / 2)
                grown.append({**p, "x": (x0 + x1) / 2, "y": (y0 + y1) / 2, "width": x1 - x0, "height": y1 - y0})
            out.append({"predictions": d.replace(grown)})
        return out
