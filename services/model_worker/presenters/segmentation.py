"""Instance segmentation: boxes with mask outlines, every part and hole, or an RLE mask."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from fleet.v1 import inference_pb2
from services.common.model_spec import ModelSpec
from services.model_worker.presenters.boxes import detection_messages, draw_boxes, summarize_detections
from services.model_worker.processing.params import MaskFormat, ResolvedParams
from services.model_worker.processing.results import Detections
from services.model_worker.visualize import colour

# One ``points`` entry (field 2 of SegmentedInstance, or field 1 of Polygon: length-delimited) holding a
# Point: x (field 1, fixed32 float) and y (field 2, fixed32 float), 12 bytes on the wire. Encoding outlines
# with numpy is ~25x faster than building a Point message per vertex.
_POINT_WIRE = np.dtype([("field", "u1"), ("length", "u1"), ("x_tag", "u1"), ("x", "<f4"), ("y_tag", "u1"),
                        ("y", "<f4")])


def points_wire(polygon: np.ndarray, field: int = 2) -> bytes:
    """The serialized repeated Point field number ``field`` for an (N, 2) outline, to merge into a message."""
    wire = np.empty(len(polygon), _POINT_WIRE)
    wire["field"], wire["length"], wire["x_tag"], wire["y_tag"] = (field << 3) | 2, 10, 0x0D, 0x15
    wire["x"], wire["y"] = polygon[:, 0], polygon[:, 1]
    return wire.tobytes()


class SegmentationPresenter:
    field = "instance_segmentation"

    def message(self, result: Detections, spec: ModelSpec, params: ResolvedParams, height: int,
                width: int) -> inference_pb2.InstanceSegmentationResult:
        out = inference_pb2.InstanceSegmentationResult()
        for det, mask in zip(detection_messages(result, spec.class_names), result.masks or []):
            inst = out.instances.add(detection=det)
            inst.MergeFromString(points_wire(np.asarray(mask.polygon()).reshape(-1, 2)))
            if params.mask_format == MaskFormat.POLYGONS:
                for points, hole in mask.parts():
                    inst.parts.add(hole=hole).MergeFromString(points_wire(points, field=1))
            elif params.mask_format == MaskFormat.RLE:
                inst.rle.height, inst.rle.width = height, width
                inst.rle.counts.extend(mask.rle(height, width).tolist())
        return out

    def draw(self, img: np.ndarray, result: Detections, spec: ModelSpec) -> None:
        overlay = img.copy()
        for mask, cid in zip(result.masks or [], result.class_ids):
            h, w = mask.mask.shape
            region = overlay[mask.y0 : mask.y0 + h, mask.x0 : mask.x0 + w]
            region[mask.mask[: region.shape[0], : region.shape[1]]] = colour(int(cid))
        cv2.addWeighted(overlay, 0.4, img, 0.6, 0, dst=img)
        for mask, cid in zip(result.masks or [], result.class_ids):
            for points, _ in mask.parts():
                if len(points) >= 3:
                    cv2.polylines(img, [points.astype(np.int32)], True, colour(int(cid)), 1, cv2.LINE_AA)
        draw_boxes(img, result, spec.class_names)

    def summarize(self, result: Detections, spec: ModelSpec) -> dict[str, Any]:
        return summarize_detections(result, spec)
