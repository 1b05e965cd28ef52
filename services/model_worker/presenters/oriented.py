"""Oriented boxes: centre, size, angle and the four corners."""

from __future__ import annotations

import uuid
from typing import Any

import cv2
import numpy as np

from fleet.v1 import inference_pb2
from services.common.model_spec import ModelSpec
from services.model_worker.presenters.boxes import draw_boxes, summarize_detections
from services.model_worker.processing.decoders import rbox_corners
from services.model_worker.processing.params import ResolvedParams
from services.model_worker.processing.results import Detections
from services.model_worker.visualize import colour


class OrientedPresenter:
    field = "oriented_detection"

    def message(self, result: Detections, spec: ModelSpec, params: ResolvedParams, height: int,
                width: int) -> inference_pb2.OrientedDetectionResult:
        assert result.rboxes is not None
        out = inference_pb2.OrientedDetectionResult()
        corners = rbox_corners(result.rboxes).tolist()
        for (cx, cy, w, h, angle), score, cid, quad in zip(result.rboxes.tolist(), result.scores.tolist(),
                                                           result.class_ids.tolist(), corners):
            out.boxes.add(x=cx, y=cy, width=w, height=h, angle=angle, confidence=score,
                          class_name=spec.class_names[cid], class_id=cid, detection_id=str(uuid.uuid4()),
                          corners=[inference_pb2.Point(x=x, y=y) for x, y in quad])
        return out

    def draw(self, img: np.ndarray, result: Detections, spec: ModelSpec) -> None:
        assert result.rboxes is not None
        for quad, cid in zip(rbox_corners(result.rboxes), result.class_ids):
            cv2.polylines(img, [np.round(quad).astype(np.int32)], True, colour(int(cid)), 2, cv2.LINE_AA)
        draw_boxes(img, result, spec.class_names, boxes=False)

    def summarize(self, result: Detections, spec: ModelSpec) -> dict[str, Any]:
        return summarize_detections(result, spec)
