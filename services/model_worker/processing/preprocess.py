"""Image -> model input tensor (resize, pad, channel order, normalization)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from services.common.model_spec import ColorOrder, InputSpec, ResizeMode


@dataclass(frozen=True)
class Transform:
    """Maps model-input coordinates back to the original image: x0 = (x - pad_x) / scale_x."""

    orig_width: int
    orig_height: int
    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float

    def boxes_to_original(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Input-space xyxy boxes -> original-image xyxy boxes, clipped to the image."""
        out = np.empty_like(boxes_xyxy, dtype=np.float32)
        xs, ys = out[:, 0::2], out[:, 1::2]  # views: (x0, x1) and (y0, y1)
        xs[:] = (boxes_xyxy[:, 0::2] - self.pad_x) / self.scale_x
        ys[:] = (boxes_xyxy[:, 1::2] - self.pad_y) / self.scale_y
        np.clip(xs, 0, self.orig_width, out=xs)
        np.clip(ys, 0, self.orig_height, out=ys)
        return out


def letterbox_geometry(width: int, height: int, spec: InputSpec) -> tuple[int, int, int, int, float]:
    """(new_w, new_h, left, top, ratio) for fitting width x height into the input, aspect kept."""
    ratio = min(spec.width / width, spec.height / height)
    new_w = max(1, min(spec.width, int(round(width * ratio))))
    new_h = max(1, min(spec.height, int(round(height * ratio))))
    left = (spec.width - new_w) // 2
    top = (spec.height - new_h) // 2
    return new_w, new_h, left, top, ratio


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == size:
        return image
    # Bilinear, as Ultralytics' own letterbox does: models trained that way expect it.
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def resize_to_input(image: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, Transform]:
    """Resize (and pad) an RGB uint8 image to the model's input size."""
    height, width = image.shape[:2]
    if spec.resize_mode == ResizeMode.STRETCH:
        resized = _resize(image, (spec.width, spec.height))
        return resized, Transform(width, height, spec.width / width, spec.height / height, 0.0, 0.0)
    new_w, new_h, left, top, _ = letterbox_geometry(width, height, spec)
    resized = _resize(image, (new_w, new_h))
    canvas = np.full((spec.height, spec.width, 3), spec.pad_value, dtype=np.uint8)
    canvas[top : top + new_h, left : left + new_w] = resized
    # Use the exact per-axis ratio the resize applied, so boxes map back without drift.
    return canvas, Transform(width, height, new_w / width, new_h / height, float(left), float(top))


def to_tensor(image: np.ndarray, spec: InputSpec) -> np.ndarray:
    """RGB uint8 HxWx3 at input size -> float32 3xHxW normalized in the model's channel order."""
    if spec.color_order == ColorOrder.BGR:
        image = image[:, :, ::-1]
    chw = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
    chw *= np.float32(spec.scale)
    if any(spec.mean) or any(s != 1.0 for s in spec.std):
        mean = np.asarray(spec.mean, dtype=np.float32).reshape(3, 1, 1)
        std = np.asarray(spec.std, dtype=np.float32).reshape(3, 1, 1)
        chw -= mean
        chw /= std
    return chw


def preprocess(image: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, Transform]:
    """RGB uint8 HxWx3 image -> (float32 3xHxW input tensor, Transform back to the image)."""
    resized, transform = resize_to_input(image, spec)
    return to_tensor(resized, spec), transform
