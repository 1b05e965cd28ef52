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
