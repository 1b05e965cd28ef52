"""Visualisation blocks: boxes, labels or outlines drawn on the image, answered as an image."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from services.common.errors import FleetError, InvalidImage
from services.workflows import kinds
from services.workflows.blocks.base import ELEMENT, Block, Item, Param, RunContext
from services.workflows.data import Detections, WImage, xyxy

STYLE = ("color_palette", "palette_size", "custom_colors", "color_axis", "roundness", "text_color", "text_scale",
         "text_thickness", "text_padding", "text_position", "border_radius")
LABELS = ("Class", "Confidence", "Class and Confidence", "Class ID", "Detection ID")


class Visualization(Block):
    outputs = {"image": kinds.IMAGE}
    ignored = STYLE
    needs_pixels = True
    failure_scope = ELEMENT  # an image that cannot be decoded fails only its branch
    base_params: ClassVar[dict[str, Param]] = {
        "image": Param("The image to draw on.", kinds=(kinds.IMAGE,), required=True),
        "predictions": Param("What to draw.", kinds=kinds.DETECTIONS, required=True),
        "copy_image": Param("Draw on a copy (false: on the image other steps see too; kept a copy here).",
                            literal=(bool,), default=True),
    }

    async def run(self, ctx: RunContext, config: Any, items: list[Item]) -> list[Item | FleetError]:
        out: list[Item | FleetError] = []
        for item in items:
            self.check("", item)  # parameters may bring the style: checked as the literals were
            image: WImage = item["image"]
            try:
                pixels = await image.array(ctx.cpu)
            except InvalidImage as exc:
                out.append(exc)
                continue
            drawn = await ctx.cpu(self._draw, pixels, item["predictions"], item)
            out.append({"image": image.drawn(drawn)})
        return out

    def _draw(self, pixels: np.ndarray, detections: Detections, item: Item) -> np.ndarray:
        canvas = pixels.copy()
        for p in detections.predictions:
            self.draw(canvas, p, item)
        return canvas

    def draw(self, canvas: np.ndarray, p: dict, item: Item) -> None:
        raise NotImplementedError


def _colour(p: dict) -> tuple[int, int, int]:
    from services.model_worker.visualize import colour  # noqa: PLC0415 - the palette the worker draws with

    return colour(int(p.get("class_id", 0)))


class BoundingBoxVisualization(Visualization):
    id = "roboflow_core/bounding_box_visualization@v1"
    aliases = ("BoundingBoxVisualization",)
    summary = "Each detection's box drawn on the image."
    params = {**Visualization.base_params, "thickness": Param("Line width in pixels.", literal=(int,), default=2)}

    def draw(self, canvas: np.ndarray, p: dict, item: Item) -> None:
        import cv2  # noqa: PLC0415

        x0, y0, x1, y1 = (int(round(v)) for v in xyxy(p))
        cv2.rectangle(canvas, (x0, y0), (x1, y1), _colour(p), max(1, int(item["thickness"])))


class LabelVisualization(Visualization):
    id = "roboflow_core/label_visualization@v1"
    aliases = ("LabelVisualization",)
    summary = "Each detection's label (text: " + ", ".join(LABELS) + ") at its box's corner."
    params = {**Visualization.base_params, "text": Param("What the label says: " + ", ".join(LABELS) + ".",
                                                         literal=(str,), default="Class")}

    def check(self, step: str, literals: dict[str, Any]) -> Any:
        from services.workflows.definition import InvalidWorkflow  # noqa: PLC0415

        text = literals.get("text", "Class")
        if not isinstance(text, str) or text not in LABELS:
            where = f"step {step!r}: " if step else ""
            raise InvalidWorkflow(f"{where}text {text!r} is not supported; supported: {', '.join(LABELS)}")
        return None

    def draw(self, canvas: np.ndarray, p: dict, item: Item) -> None:
        from services.model_worker.visualize import label  # noqa: PLC0415

        text = {"Class": p["class"], "Confidence": f"{p['confidence']:.2f}",
                "Class and Confidence": f"{p['class']} {p['confidence']:.2f}", "Class ID": str(p["class_id"]),
                "Detection ID": p.get("detection_id", "")}[item["text"]]
        x0, y0, _, _ = (int(round(v)) for v in xyxy(p))
        label(canvas, text, x0, y0, _colour(p))


class PolygonVisualization(Visualization):
    id = "roboflow_core/polygon_visualization@v1"
    aliases = ("PolygonVisualization",)
    summary = "Each instance's outline (instance-segmentation predictions' points) drawn on the image."
    params = {**Visualization.base_params,
              "predictions": Param("Instance-segmentation predictions.", kinds=(kinds.INSTANCE_SEGMENTATION,),
                                   required=True),
              "thickness": Param("Line width in pixels.", literal=(int,), default=2)}

    def draw(self, canvas: np.ndarray, p: dict, item: Item) -> None:
        import cv2  # noqa: PLC0415

        points = np.array([[pt["x"], pt["y"]] for pt in p.get("points", [])], np.int32)
        if len(points) >= 2:
            cv2.polylines(canvas, [points.reshape(-1, 1, 2)], True, _colour(p), max(1, int(item["thickness"])))


VISUALIZATION_BLOCKS = (BoundingBoxVisualization(), LabelVisualization(), PolygonVisualization())
