"""Promptable segmentation (SAM-style) pre- and post-processing on numpy arrays, no ONNX Runtime.

The image goes through the package's input spec (``preprocess``: longest side to the input size,
top-left letterbox). Prompts are given in original-image pixels, continuous coordinates: pixel
``(x, y)``'s centre is at ``(x + 0.5, y + 0.5)`` (SAM's predictor takes integer pixel indices and
its prompt encoder adds the 0.5), boxes xyxy on pixel edges. They are mapped here to the decoder's
input-pixel coordinates in SAM's ONNX convention: labels 1 positive point, 0 negative point, 2 and
3 a box's top-left and bottom-right corners, -1 padding (one padding point is added when there is
no box, as SAM's predictor does). The decoder's low-res mask logits map back to the original image
as SAM's ``postprocess_masks`` does: upsample to the input size, cut the unpadded window, resize to
the original size (bilinear), then threshold at 0. SAM's own ONNX decoder (``SamOnnxModel``, inputs
``image_embeddings`` ... ``orig_im_size``) does that step itself: given ``orig_im_size`` its ``masks`` are
already at the original size (services.tasks.promptable feeds it and only thresholds them).
"""

from __future__ import annotations

import cv2
import numpy as np

from services.model_worker.processing.preprocess import Transform

POSITIVE, NEGATIVE, PADDING, BOX_TOP_LEFT, BOX_BOTTOM_RIGHT = 1.0, 0.0, -1.0, 2.0, 3.0
MASK_THRESHOLD = 0.0


def prompt_arrays(
    transform: Transform,
    points: np.ndarray | None = None,
    point_labels: np.ndarray | None = None,
    box: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Original-pixel points (N x 2, labels N of 1/0) and an optional xyxy box -> the decoder's
    ``point_coords`` [1, M, 2] and ``point_labels`` [1, M] (input pixels)."""
    coords: list[np.ndarray] = []
    labels: list[float] = []
    if points is not None and len(points):
        if point_labels is None or len(point_labels) != len(points):
            raise ValueError("each point needs a label (1 positive, 0 negative)")
        if not np.isin(np.asarray(point_labels, dtype=np.float32), (POSITIVE, NEGATIVE)).all():
            raise ValueError("point labels must be 1 (positive) or 0 (negative)")
        coords.append(np.asarray(points, dtype=np.float32).reshape(-1, 2))
        labels.extend(float(v) for v in point_labels)
    if box is not None:
        coords.append(np.asarray(box, dtype=np.float32).reshape(2, 2))
        labels.extend((BOX_TOP_LEFT, BOX_BOTTOM_RIGHT))
    else:
        coords.append(np.zeros((1, 2), dtype=np.float32))
        labels.append(PADDING)
    xy = np.concatenate(coords)
    scaled = np.stack([xy[:, 0] * transform.gain_x + transform.pad_x, xy[:, 1] * transform.gain_y + transform.pad_y], 1)
    pad = np.asarray(labels) == PADDING
    scaled[pad] = 0.0
    return scaled[None].astype(np.float32), np.asarray(labels, dtype=np.float32)[None]


def masks_to_original(low_res: np.ndarray, transform: Transform, input_size: tuple[int, int]) -> np.ndarray:
    """M x h x w low-res logits -> M x H x W logits at the original image size (threshold at 0)."""
    width, height = input_size
    left, top, right, bottom = transform.mask_window or (0, 0, width, height)
    out = np.empty((len(low_res), transform.orig_height, transform.orig_width), dtype=np.float32)
    for i, logits in enumerate(low_res):
        full = cv2.resize(logits.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
        out[i] = cv2.resize(full[top:bottom, left:right], (transform.orig_width, transform.orig_height),
                            interpolation=cv2.INTER_LINEAR)
    return out


def embedding(outputs: list[np.ndarray], spec: object, transform: object, params: object) -> np.ndarray:
    """The layout decoder of an image encoder whose output is the image embedding ([C, h, w]), as it is."""
    return outputs[0]
