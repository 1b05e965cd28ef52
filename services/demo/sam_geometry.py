"""The promptable segmenter's input spec and the evaluation's prompts (numpy only, no torch)."""

from __future__ import annotations

import cv2
import numpy as np

from services.common.model_spec import Anchor, InputSpec, ResizeMode

SAM_INPUT_SIZE = 320
#: Longest side resized to 320, padded right and below (SAM's preprocessing, at the demo's scale).
SAM_INPUT_SPEC = InputSpec(
    name="pixels", width=SAM_INPUT_SIZE, height=SAM_INPUT_SIZE, resize_mode=ResizeMode.LETTERBOX,
    anchor=Anchor.TOP_LEFT, pad_value=114, scale=1.0 / 255.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
)


def deepest_point(mask: np.ndarray) -> np.ndarray:
    """The pixel centre (x + 0.5, y + 0.5) inside ``mask`` farthest from its boundary."""
    depth = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return np.array([x + 0.5, y + 0.5], dtype=np.float32)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b)) / union if union else 1.0
