"""Raw outputs of one image (batch dimension removed) -> Detections or Classification, per layout.

Dense layouts (``yolov8*``, ``yolov5``) keep the best class per candidate, filter by confidence
and run NMS (rotated ProbIoU NMS for oriented boxes); end-to-end layouts (``yolo-e2e*``) are
already one row per object and are only filtered. Geometry is mapped back by ``Transform`` from
where the letterbox placed the image (as current Ultralytics' ``scale_boxes`` / ``scale_coords``):
boxes and keypoints clipped, oriented boxes regularised (angle in [0, pi/2)) and mapped without
clipping, masks as in ``masks.instance_masks``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from services.common.model_spec import ModelSpec
from services.model_worker.processing.masks import instance_masks
from services.model_worker.processing.nms import cxcywh_to_xyxy, nms, nms_rotated, top_candidates
from services.model_worker.processing.params import ResolvedParams
from services.model_worker.processing.preprocess import Transform
from services.model_worker.processing.results import Classification, Detections

Outputs = Sequence[np.ndarray]


def _restrict(scores: np.ndarray, params: ResolvedParams) -> np.ndarray:
    """Zero the scores of classes outside the class filter (scores: (N, nc))."""
    if params.allowed_class_ids is None:
        return scores
    masked = np.zeros_like(scores)
    masked[:, params.allowed_class_ids] = scores[:, params.allowed_class_ids]
    return masked


def _best_class(class_scores: np.ndarray, params: ResolvedParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(candidate indices best first, their scores, their class ids)."""
    class_scores = _restrict(class_scores, params)
    class_ids = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(class_scores.shape[0]), class_ids]
    cand = top_candidates(scores, params.confidence, params.max_candidates)
    return cand, scores[cand].astype(np.float32), class_ids[cand].astype(np.int64)


def _dense(rows: np.ndarray, class_scores: np.ndarray, params: ResolvedParams
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Axis-aligned NMS over cxcywh ``rows[:, :4]``: (kept row indices, input-space xyxy boxes, scores, class ids)."""
    cand, scores, class_ids = _best_class(class_scores, params)
    boxes = cxcywh_to_xyxy(rows[cand, :4])
    keep = nms(boxes, scores, class_ids, params.iou_threshold, params.max_detections, params.class_agnostic_nms)
    return cand[keep], boxes[keep], scores[keep], class_ids[keep]


def _e2e(rows: np.ndarray, spec: ModelSpec, params: ResolvedParams) -> np.ndarray:
    """Rows of an NMS-free output to keep: score filter, class filter, best first, at most max_detections
    (rows naming no class of the model, such as padding rows, are dropped)."""
    scores, class_ids = rows[:, 4], rows[:, 5].astype(np.int64)
    ok = (scores >= params.confidence) & (class_ids >= 0) & (class_ids < spec.num_classes)
    if params.allowed_class_ids is not None:
        ok &= np.isin(class_ids, params.allowed_class_ids)
    idx = np.flatnonzero(ok)
    return idx[np.argsort(-scores[idx], kind="stable")][: params.max_detections]


def _detections(boxes_input: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, t: Transform,
                **extra: object) -> Detections:
    return Detections(t.boxes_to_original(boxes_input), scores.astype(np.float32), class_ids.astype(np.int64),
                      **extra)  # type: ignore[arg-type]


def _keypoints(raw: np.ndarray, spec: ModelSpec, t: Transform) -> np.ndarray:
    """(n, K*D) input-space keypoints -> (n, K, 3) x, y in the image (``scale_coords``), confidence."""
    assert spec.keypoints is not None
    dims = spec.keypoints.dims
    kp = raw.reshape(len(raw), len(spec.keypoints.names), dims).astype(np.float32)
    out = np.ones((*kp.shape[:2], 3), np.float32)  # 2-D keypoints report confidence 1
    out[..., :2] = t.points_to_original(kp[..., :2])
    if dims == 3:
        out[..., 2] = kp[..., 2]
    return out


def _regularize(rboxes: np.ndarray) -> np.ndarray:
    """Ultralytics' ``regularize_rboxes``: angle in [0, pi/2), w and h swapped when it was turned by more."""
    out = rboxes.astype(np.float32, copy=True)
    swap = np.mod(out[:, 4], np.pi) >= np.pi / 2
    out[swap, 2], out[swap, 3] = rboxes[swap, 3], rboxes[swap, 2]
    out[:, 4] = np.mod(out[:, 4], np.pi / 2)
    return out


def _oriented(rboxes_input: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, t: Transform) -> Detections:
    rboxes = t.rboxes_to_original(_regularize(rboxes_input))
    corners = rbox_corners(rboxes)
    aabb = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
    aabb[:, 0::2] = np.clip(aabb[:, 0::2], 0, t.orig_width)
    aabb[:, 1::2] = np.clip(aabb[:, 1::2], 0, t.orig_height)
    return Detections(aabb.astype(np.float32), scores.astype(np.float32), class_ids.astype(np.int64), rboxes=rboxes)


def rbox_corners(rboxes: np.ndarray) -> np.ndarray:
    """(N, 5) cx, cy, w, h, angle -> (N, 4, 2) corners (Ultralytics' ``xywhr2xyxyxyxy`` order)."""
    c = rboxes[:, None, :2]
    cos, sin = np.cos(rboxes[:, 4:5]), np.sin(rboxes[:, 4:5])
    u = np.concatenate([rboxes[:, 2:3] / 2 * cos, rboxes[:, 2:3] / 2 * sin], axis=1)[:, None, :]
    v = np.concatenate([-rboxes[:, 3:4] / 2 * sin, rboxes[:, 3:4] / 2 * cos], axis=1)[:, None, :]
    return np.concatenate([c + u + v, c + u - v, c - u - v, c - u + v], axis=1).astype(np.float32)


# ---- dense layouts -------------------------------------------------------------------------------
def yolov8(outputs: Outputs, spec: ModelSpec, t: Transform, params: ResolvedParams) -> Detections:
    rows = outputs[0].T  # (N, 4 + nc)
    _, boxes, scores, class_ids = _dense(rows, rows[:, 4 : 4 + spec.num_classes], params)
    return _detections(boxes, scores, class_ids, t)


def yolov5(outputs: Outputs, spec: ModelSpec, t: Transform, params: ResolvedParams) -> Detections:
    rows = outputs[0]  # (N, 5 + nc): score = objectness x class probability
    _, boxes, scores, class_ids = _dense(rows, rows[:, 5 : 5 + spec.num_classes] * rows[:, 4:5], params)
    return _detections(boxes, scores, class_ids, t)


def yolov8_seg(outputs: Outputs, spec: ModelSpec, t: Transform, params: ResolvedParams) -> Detections:
    rows = outputs[0].T  # (N, 4 + nc + nm)
    nc = spec.num_classes
    kept, boxes, scores, class_ids = _dense(rows, rows[:, 4 : 4 + nc], params)
    masks = instance_masks(rows[kept, 4 + nc :], outputs[1], boxes, t, spec.input)
    return _detections(boxes, scores, class_ids, t, masks=masks)


def yolov8_pose(outputs: Outputs, spec: ModelSpec, t: Transform, params: ResolvedParams) -> Detections:
    rows = outputs[0].T  # (N, 4 + nc + K * D)
    nc = spec.num_classes
    kept, boxes, scores, class_ids = _dense(rows, rows[:, 4 : 4 + nc], params)
    return _detections(boxes, scores, class_ids, t, keypoints=_keypoints(rows[kept, 4 + nc :], spec, t))


def yolov8_obb(outputs: Outputs, spec: ModelSpec, t: Transform, params: ResolvedParams) -> Detections:
    rows = outputs[0].T  # (N, 4 + nc + 1): cx, cy, w, h, scores, angle
    nc = spec.num_classes
    cand, scores, class_ids = _best_class(rows[:, 4 : 4 + nc], params)
    rboxes = np.concatenate([rows[cand, :4], rows[cand, 4 + nc : 5 + nc]], axis=1)
    keep = nms_rotated(rboxes, scores, class_ids, params.iou_threshold, params.max_detections,
                       params.class_agnostic_nms)
    return _oriented(rboxes[keep], scores[keep], class_ids[keep], t)


# ---- end-to-end (NMS-free) layouts: [K, 6 + extra] --------------------------------------------
def e2e(outputs: Outputs, spec: ModelSpec, t: Transform, params: ResolvedParams) -> Detections:
    rows = outputs[0]
    keep = _e2e(rows, spec, params)
    return _detections(rows[keep, :4], rows[keep, 4], rows[keep, 5], t)


def e2e_seg(outputs: Outputs, spec: ModelSpec, t: Transform, params: ResolvedParams) -> Detections:
    rows = outputs[0]
    keep = _e2e(rows, spec, params)
    masks = instance_masks(rows[keep, 6:], outputs[1], rows[keep, :4], t, spec.input)
    return _detections(rows[keep, :4], rows[keep, 4], rows[keep, 5], t, masks=masks)


def e2e_pose(outputs: Outputs, spec: ModelSpec, t: Transform, params: ResolvedParams) -> Detections:
    rows = outputs[0]
    keep = _e2e(rows, spec, params)
    return _detections(rows[keep, :4], rows[keep, 4], rows[keep, 5], t, keypoints=_keypoints(rows[keep, 6:], spec, t))


def e2e_obb(outputs: Outputs, spec: ModelSpec, t: Transform, params: ResolvedParams) -> Detections:
    rows = outputs[0]  # cx, cy, w, h, score, class, angle
    keep = _e2e(rows, spec, params)
    rboxes = np.concatenate([rows[keep, :4], rows[keep, 6:7]], axis=1)
    return _oriented(rboxes, rows[keep, 4], rows[keep, 5].astype(np.int64), t)


# ---- classification -------------------------------------------------------------------------------
def classify(outputs: Outputs, spec: ModelSpec, t: Transform, params: ResolvedParams) -> Classification:
    probs = outputs[0].reshape(-1)[: spec.num_classes].astype(np.float32)
    ids = np.arange(spec.num_classes) if params.allowed_class_ids is None else params.allowed_class_ids
    order = ids[np.argsort(-probs[ids], kind="stable")]
    predicted = np.zeros((0,), np.int64)
    if spec.multi_label:
        predicted = order[probs[order] >= params.confidence].astype(np.int64)
    if params.top_k is not None:
        order = order[: params.top_k]
    return Classification(order.astype(np.int64), probs[order], spec.multi_label, predicted, probs)
