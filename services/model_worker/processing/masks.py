"""Instance masks from YOLO prototype masks, sampled straight into original-image boxes."""

from __future__ import annotations

import math

import cv2
import numpy as np

from services.common.model_spec import InputSpec
from services.model_worker.processing.preprocess import Transform
from services.model_worker.processing.results import InstanceMask

MASK_THRESHOLD = 0.5


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


def instance_masks(
    coeffs: np.ndarray,
    protos: np.ndarray,
    boxes_original: np.ndarray,
    transform: Transform,
    spec: InputSpec,
) -> list[InstanceMask]:
    """One mask per detection, cropped to its box, at original-image resolution.

    coeffs: (n, nm) mask coefficients; protos: (nm, ph, pw); boxes_original: (n, 4) xyxy.
    Each original pixel centre in a box is mapped through the letterbox/stretch transform
    into prototype space and sampled bilinearly, so no full-image mask is ever built.
    """
    nm, ph, pw = protos.shape
    if coeffs.shape[0] == 0:
        return []
    probs = _sigmoid(coeffs.astype(np.float32) @ protos.reshape(nm, -1).astype(np.float32))
    probs = probs.reshape(-1, ph, pw)
    kx, ky = pw / spec.width, ph / spec.height
    out: list[InstanceMask] = []
    for prob, (bx0, by0, bx1, by1) in zip(probs, boxes_original):
        x0, y0 = int(math.floor(bx0)), int(math.floor(by0))
        x1 = min(int(math.ceil(bx1)), transform.orig_width)
        y1 = min(int(math.ceil(by1)), transform.orig_height)
        width, height = max(0, x1 - x0), max(0, y1 - y0)
        if width == 0 or height == 0:
            out.append(InstanceMask(x0, y0, np.zeros((height, width), dtype=bool)))
            continue
        affine = np.array(
            [
                [transform.scale_x * kx, 0.0, ((x0 + 0.5) * transform.scale_x + transform.pad_x) * kx - 0.5],
                [0.0, transform.scale_y * ky, ((y0 + 0.5) * transform.scale_y + transform.pad_y) * ky - 0.5],
            ],
            dtype=np.float64,
        )
        sampled = cv2.warpAffine(
            prob, affine, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        out.append(InstanceMask(x0, y0, sampled > MASK_THRESHOLD))
    return out
