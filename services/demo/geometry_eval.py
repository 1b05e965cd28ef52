"""Held-out accuracy of the geometry demo packages, decoded by the worker's own code.

* Keypoints (``shapes-pose``): COCO keypoint AP (pycocotools COCOeval, iouType ``keypoints``) with
  the OKS sigma Ultralytics uses for datasets without COCO's (1 / number of keypoints); the object
  area in OKS is the visible mask's, as COCO's; a triangle's absent fourth corner is not scored.
* Oriented boxes (``shapes-obb``): AP of rotated boxes at rotated-IoU 0.5 and 0.5:0.95 (COCO's
  101-point interpolation, greedy matching best score first), the IoU of the two rectangles'
  intersection polygon (OpenCV).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import cv2
import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from services.demo.corners import KEYPOINT_NAMES, OBB_CLASSES, OKS_SIGMA, POSE_CLASSES, SKELETON, obb_truth, pose_truth
from services.demo.scenes import Scene

Predict = Any  # services.demo.evaluate.Predictor (imported there; avoids a cycle)


def evaluate_pose(predictor: Predict, scenes: list[list[Scene]], count: int) -> dict[str, Any]:
    images, annotations, detections = [], [], []
    for batch in scenes:
        for scene, result in zip(batch, predictor.predict([s.image for s in batch])):
            images.append({"id": scene.seed, "width": scene.width, "height": scene.height})
            truth = pose_truth(scene)
            labels = np.asarray(scene.labels)
            areas = [int(m.sum()) for m, lab in zip(scene.masks, labels) if lab != 0]
            for box, label, kp, area in zip(truth.boxes, truth.labels, truth.keypoints, areas):
                x1, y1, x2, y2 = (float(v) for v in box)
                annotations.append({
                    "id": len(annotations) + 1, "image_id": scene.seed, "category_id": int(label) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": area, "iscrowd": 0,
                    "keypoints": kp.reshape(-1).tolist(), "num_keypoints": int((kp[:, 2] > 0).sum()),
                })  # fmt: skip
            for box, score, cid, kp in zip(result.boxes_xyxy, result.scores, result.class_ids, result.keypoints):
                x1, y1, x2, y2 = (float(v) for v in box)
                detections.append({"image_id": scene.seed, "category_id": int(cid) + 1, "score": float(score),
                                   "bbox": [x1, y1, x2 - x1, y2 - y1], "keypoints": kp.reshape(-1).tolist()})
    categories = [{"id": i + 1, "name": n, "keypoints": list(KEYPOINT_NAMES),
                   "skeleton": [[a + 1, b + 1] for a, b in SKELETON]} for i, n in enumerate(POSE_CLASSES)]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {"images": images, "annotations": annotations, "categories": categories}
        coco.createIndex()
        if not detections:
            return {"images": count, "oks_ap50": 0.0, "oks_ap50_95": 0.0}
        evaluator = COCOeval(coco, coco.loadRes(detections), "keypoints")
        evaluator.params.kpt_oks_sigmas = np.full(len(KEYPOINT_NAMES), OKS_SIGMA)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {"images": count, "oks_ap50": round(float(evaluator.stats[1]), 4),
            "oks_ap50_95": round(float(evaluator.stats[0]), 4), "oks_sigma": OKS_SIGMA}


def rotated_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two cx, cy, w, h, angle (radians) rectangles."""
    ra = ((float(a[0]), float(a[1])), (float(a[2]), float(a[3])), float(np.degrees(a[4])))
    rb = ((float(b[0]), float(b[1])), (float(b[2]), float(b[3])), float(np.degrees(b[4])))
    kind, points = cv2.rotatedRectangleIntersection(ra, rb)
    if kind == cv2.INTERSECT_NONE or points is None or len(points) < 3:
        return 0.0
    inter = float(cv2.contourArea(cv2.convexHull(points)))
    return inter / max(float(a[2] * a[3] + b[2] * b[3]) - inter, 1e-9)


def _ap(detections: list[tuple[float, int, np.ndarray]], truths: dict[int, np.ndarray], threshold: float) -> float:
    """detections: (score, image id, rbox); truths: image id -> (M, 5). COCO's 101-point AP."""
    total = sum(len(t) for t in truths.values())
    if total == 0:
        return 0.0
    used = {image: np.zeros(len(t), bool) for image, t in truths.items()}
    tp = []
    for score, image, rbox in sorted(detections, key=lambda d: -d[0]):
        gts = truths.get(image, np.zeros((0, 5)))
        ious = np.array([rotated_iou(rbox, g) for g in gts]) if len(gts) else np.zeros(0)
        if len(ious):
            ious[used[image]] = -1.0
        best = int(np.argmax(ious)) if len(ious) else -1
        hit = best >= 0 and ious[best] >= threshold
        if hit:
            used[image][best] = True
        tp.append(hit)
    hits = np.cumsum(tp)
    recall = hits / total
    precision = hits / np.arange(1, len(tp) + 1)
    precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    points = np.linspace(0, 1, 101)
    index = np.searchsorted(recall, points, side="left")
    return float(np.mean([precision[i] if i < len(precision) else 0.0 for i in index]))


def evaluate_obb(predictor: Predict, scenes: list[list[Scene]], count: int) -> dict[str, Any]:
    truths: dict[int, np.ndarray] = {}
    detections: list[tuple[float, int, np.ndarray]] = []
    for batch in scenes:
        for scene, result in zip(batch, predictor.predict([s.image for s in batch])):
            truths[scene.seed] = obb_truth(scene)
            detections += [(float(s), scene.seed, r) for s, r in zip(result.scores, result.rboxes)]
    thresholds = np.linspace(0.5, 0.95, 10)
    aps = [_ap(detections, truths, float(t)) for t in thresholds]
    assert OBB_CLASSES == ("rectangle",)  # one class: its AP is the mean AP
    return {"images": count, "obb_ap50": round(aps[0], 4), "obb_ap50_95": round(float(np.mean(aps)), 4)}

