"""Candidate selection and non-maximum suppression (OpenCV's implementation)."""

from __future__ import annotations

import cv2
import numpy as np


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    out = np.empty_like(boxes, dtype=np.float32)
    half_w = boxes[:, 2] / 2
    half_h = boxes[:, 3] / 2
    out[:, 0] = boxes[:, 0] - half_w
    out[:, 1] = boxes[:, 1] - half_h
    out[:, 2] = boxes[:, 0] + half_w
    out[:, 3] = boxes[:, 1] + half_h
    return out


def top_candidates(scores: np.ndarray, confidence: float, max_candidates: int) -> np.ndarray:
    """Indices of scores >= confidence, at most ``max_candidates`` of the best, best first."""
    idx = np.flatnonzero(scores >= confidence)
    if idx.size > max_candidates:
        part = np.argpartition(-scores[idx], max_candidates - 1)[:max_candidates]
        idx = idx[part]
    return idx[np.argsort(-scores[idx], kind="stable")]


def nms(
    boxes_xyxy: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    iou_threshold: float,
    max_detections: int,
    class_agnostic: bool,
) -> np.ndarray:
    """Indices kept by NMS (a box is dropped when its IoU with a better one exceeds the threshold)."""
    if scores.size == 0:
        return np.zeros((0,), dtype=np.int64)
    xywh = boxes_xyxy.astype(np.float64, copy=True)
    xywh[:, 2:] -= xywh[:, :2]
    # Candidates are already thresholded; OpenCV drops scores <= its threshold (which must be >= 0),
    # so shift them to keep a score of exactly 0 when the caller asked for confidence 0.
    score_list = scores.astype(np.float64) + 1.0
    if class_agnostic:
        keep = cv2.dnn.NMSBoxes(xywh, score_list, 0.0, float(iou_threshold))
    else:
        keep = cv2.dnn.NMSBoxesBatched(xywh, score_list, class_ids.astype(np.int32), 0.0, float(iou_threshold))
    keep = np.asarray(keep, dtype=np.int64).reshape(-1)
    # OpenCV's top_k bounds the candidates *before* suppression, so cap afterwards instead.
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    return keep[:max_detections]


def _covariance(rboxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a, b = rboxes[:, 2] ** 2 / 12, rboxes[:, 3] ** 2 / 12
    cos, sin = np.cos(rboxes[:, 4]), np.sin(rboxes[:, 4])
    return a * cos**2 + b * sin**2, a * sin**2 + b * cos**2, (a - b) * cos * sin


def probiou(r1: np.ndarray, r2: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """(n, m) ProbIoU of xywhr boxes (the overlap of their Gaussians; Ultralytics' ``batch_probiou``)."""
    r1, r2 = r1.astype(np.float64), r2.astype(np.float64)
    a1, b1, c1 = (v[:, None] for v in _covariance(r1))
    a2, b2, c2 = (v[None, :] for v in _covariance(r2))
    x1, y1 = r1[:, 0:1], r1[:, 1:2]
    x2, y2 = r2[None, :, 0], r2[None, :, 1]
    a, b, c = a1 + a2, b1 + b2, c1 + c2
    det = a * b - c**2
    t1 = (a * (y1 - y2) ** 2 + b * (x1 - x2) ** 2) / (det + eps) * 0.25
    t2 = (c * (x2 - x1) * (y1 - y2)) / (det + eps) * 0.5
    own = np.sqrt(np.clip(a1 * b1 - c1**2, 0, None) * np.clip(a2 * b2 - c2**2, 0, None))
    t3 = np.log(det / (4 * own + eps) + eps) * 0.5
    distance = np.clip(t1 + t2 + t3, eps, 100.0)
    return 1.0 - np.sqrt(1.0 - np.exp(-distance) + eps)


_ROWS = 512


def nms_rotated(rboxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float,
                max_detections: int, class_agnostic: bool) -> np.ndarray:
    """Indices kept by Ultralytics' rotated NMS: best first, a box is dropped when its ProbIoU with
    any better box of its class (suppressed or not: "fast NMS") reaches the threshold."""
    if scores.size == 0:
        return np.zeros((0,), dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    boxes, ids = rboxes[order], class_ids[order]
    suppressed = np.zeros(len(order), bool)
    for start in range(0, len(order), _ROWS):  # rows of the pairwise matrix a few at a time: bounded memory
        rows = slice(start, start + _ROWS)
        ious = probiou(boxes[rows], boxes)
        ious[np.arange(ious.shape[0])[:, None] + start >= np.arange(len(order))[None, :]] = 0.0  # better boxes only
        if not class_agnostic:
            ious[ids[rows, None] != ids[None, :]] = 0.0
        suppressed |= (ious >= iou_threshold).any(axis=0)
    return order[~suppressed][:max_detections]
