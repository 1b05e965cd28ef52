"""Image -> model input tensor (resize, pad or crop, channel order, normalization).

The geometry is Ultralytics': ``LetterBox(auto=False, scaleup=True)`` (one ratio, the resized size
and the padding rounded as it rounds them, centred or top-left), a stretch, or the classifiers'
centre crop; or torchvision's ``Resize(shortest side)`` + ``CenterCrop`` (OpenCLIP). The ``pil-*``
interpolations resize with PIL's antialiased filters exactly as torchvision resizes a PIL image, and a
letterbox may be padded with zeros after normalisation (SAM), so those models' references are matched.
``Transform`` maps coordinates back with exactly the offsets and the resized size at which the image
was placed (as current Ultralytics' ``scale_boxes`` takes its pad from the rounded
size), so a point of the image comes back where it was.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from services.common.model_spec import Anchor, ColorOrder, InputSpec, Interpolation, ResizeMode

INTERPOLATION = {
    Interpolation.LINEAR: cv2.INTER_LINEAR, Interpolation.AREA: cv2.INTER_AREA, Interpolation.CUBIC: cv2.INTER_CUBIC,
    Interpolation.LANCZOS: cv2.INTER_LANCZOS4, Interpolation.NEAREST: cv2.INTER_NEAREST,
}
PIL_FILTERS = {Interpolation.PIL_BILINEAR: Image.Resampling.BILINEAR, Interpolation.PIL_BICUBIC: Image.Resampling.BICUBIC}


@dataclass(frozen=True)
class Transform:
    """Input pixels -> original pixels: x0 = (x - pad_x) / gain_x, y0 = (y - pad_y) / gain_y.

    For a letterbox, ``pad_*`` are the left and top offsets at which the resized image was placed
    and ``gain_*`` the resized size over the image's size on each axis, so the placed image's edges
    map back to the image's edges exactly. Boxes, keypoints, oriented boxes and masks all use them.
    """

    orig_width: int
    orig_height: int
    gain_x: float
    gain_y: float
    pad_x: float
    pad_y: float

    @property
    def mask_window(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom): the input pixels the image was resized into (``scale_masks``' cut)."""
        return (round(self.pad_x), round(self.pad_y), round(self.pad_x + self.orig_width * self.gain_x),
                round(self.pad_y + self.orig_height * self.gain_y))

    def boxes_to_original(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Input-space xyxy boxes -> original-image xyxy boxes, clipped to the image."""
        out = np.empty_like(boxes_xyxy, dtype=np.float32)
        xs, ys = out[:, 0::2], out[:, 1::2]  # views: (x0, x1) and (y0, y1)
        xs[:] = (boxes_xyxy[:, 0::2] - self.pad_x) / self.gain_x
        ys[:] = (boxes_xyxy[:, 1::2] - self.pad_y) / self.gain_y
        np.clip(xs, 0, self.orig_width, out=xs)
        np.clip(ys, 0, self.orig_height, out=ys)
        return out

    def points_to_original(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) input-space points -> original pixels, clipped (``scale_coords``)."""
        out = np.empty_like(xy, dtype=np.float32)
        out[..., 0] = np.clip((xy[..., 0] - self.pad_x) / self.gain_x, 0, self.orig_width)
        out[..., 1] = np.clip((xy[..., 1] - self.pad_y) / self.gain_y, 0, self.orig_height)
        return out

    def rboxes_to_original(self, rboxes: np.ndarray) -> np.ndarray:
        """(N, 5) cx, cy, w, h, angle in the input -> the image (``scale_boxes(xywh=True)``: not clipped).

        Each side is scaled by how much its direction shrinks (1 / gain when both gains are equal)."""
        out = rboxes.astype(np.float32, copy=True)
        cos, sin = np.cos(out[:, 4]), np.sin(out[:, 4])
        out[:, 0] = (out[:, 0] - self.pad_x) / self.gain_x
        out[:, 1] = (out[:, 1] - self.pad_y) / self.gain_y
        out[:, 2] *= np.hypot(cos / self.gain_x, sin / self.gain_y)
        out[:, 3] *= np.hypot(sin / self.gain_x, cos / self.gain_y)
        return out


def letterbox_geometry(width: int, height: int, spec: InputSpec) -> tuple[int, int, int, int, float]:
    """(new_w, new_h, left, top, ratio) for fitting width x height into the input, aspect kept.

    As Ultralytics: ratio = min of both; new size = round(size * ratio); centred padding split
    with round(d / 2 - 0.1) before and the rest after (top-left anchoring: none before).
    """
    ratio = min(spec.width / width, spec.height / height)
    new_w = max(1, min(spec.width, int(round(width * ratio))))
    new_h = max(1, min(spec.height, int(round(height * ratio))))
    if spec.anchor == Anchor.TOP_LEFT:
        return new_w, new_h, 0, 0, ratio
    left = int(round((spec.width - new_w) / 2 - 0.1))
    top = int(round((spec.height - new_h) / 2 - 0.1))
    return new_w, new_h, left, top, ratio


def _resize(image: np.ndarray, size: tuple[int, int], interpolation: Interpolation) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == size:
        return image
    if interpolation in PIL_FILTERS:
        return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize(size, PIL_FILTERS[interpolation]))
    return cv2.resize(image, size, interpolation=INTERPOLATION[interpolation])


def _letterbox(image: np.ndarray, spec: InputSpec, width: int, height: int) -> tuple[np.ndarray, Transform]:
    new_w, new_h, left, top, _ = letterbox_geometry(width, height, spec)
    canvas = np.full((spec.height, spec.width, 3), spec.pad_value, dtype=np.uint8)
    canvas[top : top + new_h, left : left + new_w] = _resize(image, (new_w, new_h), spec.interpolation)
    return canvas, Transform(width, height, new_w / width, new_h / height, float(left), float(top))


def _center_crop(image: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, Transform]:
    """The largest centred region with the input's aspect ratio, resized to the input (Ultralytics' CenterCrop)."""
    height, width = image.shape[:2]
    crop_w = min(width, max(1, int(round(height * spec.width / spec.height))))
    crop_h = min(height, max(1, int(round(width * spec.height / spec.width))))
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    resized = _resize(image[top : top + crop_h, left : left + crop_w], (spec.width, spec.height), spec.interpolation)
    gx, gy = spec.width / crop_w, spec.height / crop_h
    return resized, Transform(width, height, gx, gy, -left * gx, -top * gy)


def _resize_center_crop(image: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, Transform]:
    """torchvision's ``Resize(S)`` (shorter side to S, the longer ``int(S * long / short)``) then
    ``CenterCrop(S)`` (offsets ``int(round(excess / 2))``): OpenCLIP's eval transform. A square input."""
    height, width = image.shape[:2]
    size = spec.width
    if width <= height:
        new_w, new_h = size, int(size * height / width)
    else:
        new_w, new_h = int(size * width / height), size
    resized = _resize(image, (new_w, new_h), spec.interpolation)
    left, top = int(round((new_w - size) / 2.0)), int(round((new_h - size) / 2.0))
    gx, gy = new_w / width, new_h / height
    return resized[top : top + size, left : left + size], Transform(width, height, gx, gy, -float(left), -float(top))


def decode_reduction(width: int, height: int, spec: InputSpec) -> int:
    """The largest of 8, 4 and 2 by which a width x height image may be decoded smaller and still only be
    shrunk to the input (the geometry stays the full image's); 1 when none may, or for centre crops."""
    if spec.resize_mode == ResizeMode.LETTERBOX:
        target_w, target_h, *_ = letterbox_geometry(width, height, spec)
    elif spec.resize_mode == ResizeMode.STRETCH:
        target_w, target_h = spec.width, spec.height
    else:
        return 1
    if spec.interpolation in PIL_FILTERS:  # the reference's resize of the whole image, exactly
        return 1
    for factor in (8, 4, 2):
        if width // factor >= target_w and height // factor >= target_h:
            return factor
    return 1


def resize_to_input(image: np.ndarray, spec: InputSpec,
                    size: tuple[int, int] | None = None) -> tuple[np.ndarray, Transform]:
    """Resize (and pad or crop) an RGB uint8 image to the model's input size.

    ``size``: the (width, height) of the full image when ``image`` was decoded reduced from it; boxes
    map back to that size, and the geometry is the full image's (``decode_reduction``).
    """
    width, height = size or (image.shape[1], image.shape[0])
    if spec.resize_mode == ResizeMode.LETTERBOX:
        return _letterbox(image, spec, width, height)
    if spec.resize_mode == ResizeMode.CENTER_CROP:
        if (width, height) != (image.shape[1], image.shape[0]):
            raise ValueError("a centre crop needs the full image (decode_reduction is 1 for it)")
        return _center_crop(image, spec)
    if spec.resize_mode == ResizeMode.RESIZE_CENTER_CROP:
        if (width, height) != (image.shape[1], image.shape[0]):
            raise ValueError("a resize-center-crop needs the full image (decode_reduction is 1 for it)")
        return _resize_center_crop(image, spec)
    resized = _resize(image, (spec.width, spec.height), spec.interpolation)
    gx, gy = spec.width / width, spec.height / height
    return resized, Transform(width, height, gx, gy, 0.0, 0.0)


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


def preprocess(image: np.ndarray, spec: InputSpec,
               size: tuple[int, int] | None = None) -> tuple[np.ndarray, Transform]:
    """RGB uint8 HxWx3 image -> (float32 3xHxW input tensor, Transform back to the image of ``size``)."""
    resized, transform = resize_to_input(image, spec, size)
    tensor = to_tensor(resized, spec)
    if spec.pad_normalized and spec.resize_mode == ResizeMode.LETTERBOX:
        left, top, right, bottom = transform.mask_window
        keep = np.zeros(tensor.shape[1:], dtype=bool)
        keep[top:bottom, left:right] = True
        tensor[:, ~keep] = 0.0
    return tensor, transform
