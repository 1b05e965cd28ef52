"""DB text detection pre- and post-processing (PaddleOCR's ``DetResizeForTest`` and ``DBPostProcess``).

``det_preprocess`` resizes so the longer side is at most ``limit_side_len`` (``limit_type="max"``;
``"min"``: the shorter side at least that), rounds both sides to multiples of 32 and normalises
(BGR, x/255, ImageNet mean/std). ``det_boxes`` thresholds the probability map, dilates it by a
2x2 kernel, takes each contour's minimum-area rectangle, scores it by the mean probability inside
(``score_mode="fast"``), expands it by ``area * unclip_ratio / perimeter`` on every side (the
rectangle that PaddleOCR's pyclipper offset polygon's own minimum-area rectangle is) and maps it
back to the image as a quadrilateral: top-left, top-right, bottom-right, bottom-left.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

DET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
DET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
MIN_SIZE = 3  # PaddleOCR drops boxes whose short side is under this (and under +2 once expanded)


@dataclass(frozen=True)
class DetParams:
    limit_side_len: int = 960
    limit_type: str = "max"  # "max": longer side <= limit; "min": shorter side >= limit
    threshold: float = 0.3  # probability -> text pixel
    box_threshold: float = 0.6  # mean probability a box needs
    unclip_ratio: float = 1.5
    max_candidates: int = 1000
    use_dilation: bool = True


@dataclass(frozen=True)
class DetInput:
    tensor: np.ndarray  # 3 x H x W float32, H and W multiples of 32
    ratio_h: float  # resized / original
    ratio_w: float
    orig_height: int
    orig_width: int


def det_preprocess(image_bgr: np.ndarray, params: DetParams = DetParams()) -> DetInput:
    """BGR uint8 H x W x 3 -> the detector's input (batch the tensors of equal size)."""
    h, w = image_bgr.shape[:2]
    if params.limit_type == "max":
        ratio = min(1.0, params.limit_side_len / max(h, w))
    else:
        ratio = max(1.0, params.limit_side_len / min(h, w))
    new_h = max(int(round(h * ratio / 32) * 32), 32)
    new_w = max(int(round(w * ratio / 32) * 32), 32)
    resized = cv2.resize(image_bgr, (new_w, new_h))
    x = (resized.astype(np.float32) / 255.0 - DET_MEAN) / DET_STD
    return DetInput(np.ascontiguousarray(x.transpose(2, 0, 1)), new_h / h, new_w / w, h, w)


def _mini_box(points: np.ndarray) -> tuple[np.ndarray, float]:
    """The minimum-area rectangle's corners (TL, TR, BR, BL) and its short side."""
    rect = cv2.minAreaRect(points.reshape(-1, 2).astype(np.float32))
    return order_quad(cv2.boxPoints(rect)), min(rect[1])


def order_quad(corners: np.ndarray) -> np.ndarray:
    """4 x 2 corners -> top-left, top-right, bottom-right, bottom-left (PaddleOCR's ``get_mini_boxes``)."""
    pts = sorted(corners.tolist(), key=lambda p: p[0])
    left = sorted(pts[:2], key=lambda p: p[1])
    right = sorted(pts[2:], key=lambda p: p[1])
    return np.array([left[0], right[0], right[1], left[1]], dtype=np.float32)


def _box_score(prob: np.ndarray, quad: np.ndarray) -> float:
    """Mean probability inside the quadrilateral (computed on its bounding window)."""
    h, w = prob.shape
    xmin = int(np.clip(np.floor(quad[:, 0].min()), 0, w - 1))
    xmax = int(np.clip(np.ceil(quad[:, 0].max()), 0, w - 1))
    ymin = int(np.clip(np.floor(quad[:, 1].min()), 0, h - 1))
    ymax = int(np.clip(np.ceil(quad[:, 1].max()), 0, h - 1))
    mask = np.zeros((ymax - ymin + 1, xmax - xmin + 1), dtype=np.uint8)
    shifted = quad - np.array([xmin, ymin], dtype=np.float32)
    cv2.fillPoly(mask, [shifted.astype(np.int32)], 1)
    return float(cv2.mean(prob[ymin : ymax + 1, xmin : xmax + 1], mask)[0])


def _unclip(quad: np.ndarray, ratio: float) -> np.ndarray:
    """Grow a rectangle by ``area * ratio / perimeter`` on every side (same centre and angle)."""
    (cx, cy), (w, h), angle = cv2.minAreaRect(quad.astype(np.float32))
    perimeter = 2 * (w + h)
    if perimeter <= 0:
        return quad
    distance = w * h * ratio / perimeter
    return cv2.boxPoints(((cx, cy), (w + 2 * distance, h + 2 * distance), angle))


def det_boxes(
    prob_map: np.ndarray, det_input: DetInput, params: DetParams = DetParams()
) -> tuple[np.ndarray, np.ndarray]:
    """The detector's H x W probability map -> (K x 4 x 2 quads in image pixels, K scores)."""
    prob = prob_map.reshape(prob_map.shape[-2:]).astype(np.float32)
    bitmap = (prob > params.threshold).astype(np.uint8)
    if params.use_dilation:
        bitmap = cv2.dilate(bitmap, np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(bitmap * 255, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    quads, scores = [], []
    sx, sy = 1.0 / det_input.ratio_w, 1.0 / det_input.ratio_h
    for contour in contours[: params.max_candidates]:
        quad, short = _mini_box(contour)
        if short < MIN_SIZE:
            continue
        score = _box_score(prob, quad)
        if score < params.box_threshold:
            continue
        quad, short = _mini_box(_unclip(quad, params.unclip_ratio))
        if short < MIN_SIZE + 2:
            continue
        quad[:, 0] = np.clip(np.round(quad[:, 0] * sx), 0, det_input.orig_width)
        quad[:, 1] = np.clip(np.round(quad[:, 1] * sy), 0, det_input.orig_height)
        if np.linalg.norm(quad[0] - quad[1]) <= MIN_SIZE or np.linalg.norm(quad[0] - quad[3]) <= MIN_SIZE:
            continue
        quads.append(quad)
        scores.append(score)
    if not quads:
        return np.zeros((0, 4, 2), dtype=np.float32), np.zeros(0, dtype=np.float32)
    return np.stack(quads).astype(np.float32), np.asarray(scores, dtype=np.float32)
