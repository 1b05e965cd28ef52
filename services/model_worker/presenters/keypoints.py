"""Keypoint detection: boxes with named keypoints and the package's skeleton."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from fleet.v1 import inference_pb2
from services.common.model_spec import ModelSpec
from services.model_worker.presenters.boxes import detection_messages, draw_boxes, summarize_detections
from services.model_worker.processing.params import ResolvedParams
from services.model_worker.processing.results import Detections
from services.model_worker.visualize import colour

#: Keypoints (and edges) below this confidence are not drawn (Ultralytics' plotting uses 0.5).
DRAW_CONFIDENCE = 0.5


class KeypointPresenter:
    field = "keypoint_detection"

    def message(self, result: Detections, spec: ModelSpec, params: ResolvedParams, height: int,
                width: int) -> inference_pb2.KeypointDetectionResult:
        assert spec.keypoints is not None and result.keypoints is not None
        names = spec.keypoints.names
        out = inference_pb2.KeypointDetectionResult(
            skeleton=[inference_pb2.SkeletonEdge(start=a, end=b) for a, b in spec.keypoints.skeleton])
        for det, points in zip(detection_messages(result, spec.class_names), result.keypoints.tolist()):
            out.instances.add(detection=det, keypoints=[
                inference_pb2.Keypoint(x=x, y=y, confidence=c, name=name) for (x, y, c), name in zip(points, names)])
        return out

    def draw(self, img: np.ndarray, result: Detections, spec: ModelSpec) -> None:
        assert spec.keypoints is not None and result.keypoints is not None
        draw_boxes(img, result, spec.class_names)
        for points, cid in zip(result.keypoints, result.class_ids):
            bgr = colour(int(cid))
            seen = points[:, 2] >= DRAW_CONFIDENCE
            for a, b in spec.keypoints.skeleton:
                if seen[a] and seen[b]:
                    cv2.line(img, tuple(int(round(v)) for v in points[a, :2]),
                             tuple(int(round(v)) for v in points[b, :2]), bgr, 2, cv2.LINE_AA)
            for (x, y, _), ok in zip(points, seen):
                if ok:
                    cv2.circle(img, (int(round(x)), int(round(y))), 4, (255, 255, 255), cv2.FILLED, cv2.LINE_AA)
                    cv2.circle(img, (int(round(x)), int(round(y))), 4, bgr, 1, cv2.LINE_AA)

    def summarize(self, result: Detections, spec: ModelSpec) -> dict[str, Any]:
        entry = summarize_detections(result, spec)
        if result.keypoints is not None:
            entry["keypoints"] = int((result.keypoints[..., 2] >= DRAW_CONFIDENCE).sum())
        return entry
