"""Object detection: boxes with classes (and what the other box-based presenters share)."""

from __future__ import annotations

import uuid
from typing import Any

import cv2
import numpy as np

from fleet.v1 import inference_pb2
from services.common.model_spec import ModelSpec
from services.model_worker.processing.params import ResolvedParams
from services.model_worker.processing.results import Detections
from services.model_worker.visualize import colour, label


def detection_messages(result: Detections, names: tuple[str, ...]) -> list[inference_pb2.Detection]:
    out = []
    for (x0, y0, x1, y1), score, cid in zip(result.boxes_xyxy.tolist(), result.scores.tolist(),
                                            result.class_ids.tolist()):
        out.append(inference_pb2.Detection(
            x=(x0 + x1) / 2, y=(y0 + y1) / 2, width=x1 - x0, height=y1 - y0, confidence=score,
            class_name=names[cid], class_id=cid, detection_id=str(uuid.uuid4()),
        ))
    return out


def draw_boxes(img: np.ndarray, result: Detections, names: tuple[str, ...], boxes: bool = True) -> None:
    """Class labels at each box's corner, and the boxes themselves unless ``boxes`` is false."""
    for box, score, cid in zip(result.boxes_xyxy, result.scores, result.class_ids):
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        if boxes:
            cv2.rectangle(img, (x0, y0), (x1, y1), colour(int(cid)), 2)
        label(img, f"{names[cid]} {score:.2f}", x0, y0, colour(int(cid)))


def summarize_detections(result: Detections, spec: ModelSpec) -> dict[str, Any]:
    return {"detections": len(result),
            "classes": sorted({spec.class_names[c] for c in result.class_ids.tolist()})}


class DetectionPresenter:
    field = "object_detection"

    def message(self, result: Detections, spec: ModelSpec, params: ResolvedParams, height: int,
                width: int) -> inference_pb2.ObjectDetectionResult:
        return inference_pb2.ObjectDetectionResult(detections=detection_messages(result, spec.class_names))

    def draw(self, img: np.ndarray, result: Detections, spec: ModelSpec) -> None:
        draw_boxes(img, result, spec.class_names)

    def summarize(self, result: Detections, spec: ModelSpec) -> dict[str, Any]:
        return summarize_detections(result, spec)
