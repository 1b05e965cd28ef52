"""Dynamic crop: one image per detection, cut from its image; the crops of an image form its batch."""

from __future__ import annotations

from typing import Any

from services.common.crop_boxes import crop_box
from services.common.errors import FleetError, InvalidArgument, InvalidImage
from services.workflows import kinds
from services.workflows.blocks.base import ELEMENT, Block, Item, Param, RunContext
from services.workflows.data import Detections, WImage


class DynamicCrop(Block):
    id = "roboflow_core/dynamic_crop@v1"
    aliases = ("DynamicCrop", "Crop")
    summary = ("One crop per detection (its box, clipped to the image); later steps run once per crop, and a "
               "model step on the crops of the run is one batched call.")
    params = {
        "images": Param("The image(s) to cut from.", kinds=(kinds.IMAGE,), required=True),
        "predictions": Param("Where to cut: the detections on those images.", kinds=kinds.DETECTIONS, required=True),
    }
    outputs = {"crops": kinds.IMAGE}
    adds_dimension = True
    needs_pixels = True
    failure_scope = ELEMENT  # an image that cannot be decoded fails only its crops' branch

    async def run(self, ctx: RunContext, config: Any, items: list[Item]) -> list[Item | FleetError]:
        out: list[Item | FleetError] = []
        for item in items:
            image: WImage = item["images"]
            detections: Detections = item["predictions"]
            check_count(ctx, detections)
            try:
                pixels = await image.array(ctx.cpu)
            except InvalidImage as exc:
                out.append(exc)
                continue
            out.append({"crops": await ctx.cpu(cut, image, pixels, detections.predictions)})
        return out


def check_count(ctx: RunContext, detections: Detections) -> None:
    if len(detections.predictions) > ctx.max_crops_per_image:
        raise InvalidArgument(f"{len(detections.predictions)} crops of one image; at most "
                              f"{ctx.max_crops_per_image} are allowed (filter the detections first)")


def cut(image: WImage, pixels, predictions: list[dict]) -> list[WImage]:  # noqa: ANN001 - a numpy array
    h, w = pixels.shape[:2]
    crops = []
    for p in predictions:
        x0, y0, x1, y1 = crop_box(p, w, h)
        crops.append(image.child(pixels[y0:y1, x0:x1].copy(), x0, y0, p.get("detection_id") or ""))
    return crops
