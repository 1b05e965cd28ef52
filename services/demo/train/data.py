"""Training tensors built from synthetic scenes, prepared exactly as the worker feeds its models.

Detection/segmentation images are letterboxed to 320x320 (bilinear resize, centred, pad 114),
the classifier's are stretched to 128x128: the same geometry as
``services.model_worker.processing.preprocess``. Scenes are generated in a small process pool.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

from services.demo.scenes import CLASS_NAMES, CLASSIFICATION_CONFIG, generate_scene
from services.demo.train.models import CLASSIFIER_INPUT, COVERAGE_STRIDE, DETECTION_INPUT
from services.common.model_spec import InputSpec
from services.model_worker.processing.preprocess import letterbox_geometry

PAD_VALUE = 114
PROTO_SIZE = DETECTION_INPUT // 4


@dataclass
class DetectionSample:
    """One letterboxed training scene."""

    image: np.ndarray  # 320 x 320 x 3 uint8
    boxes: np.ndarray  # M x 4 float32, xyxy in input pixels
    labels: np.ndarray  # M int64
    masks: np.ndarray | None  # M x 80 x 80 float16 coverage in [0, 1] (segmentation only)


@dataclass
class DetectionData:
    """A whole training set held in memory (uint8 images; ~0.3 MB per scene)."""

    images: Tensor  # S x 3 x 320 x 320 uint8
    boxes: list[Tensor]
    labels: list[Tensor]
    masks: list[Tensor] | None  # per scene M x 80 x 80 float16

    def subset(self, count: int) -> DetectionData:
        """The first ``count`` scenes."""
        masks = None if self.masks is None else self.masks[:count]
        return DetectionData(self.images[:count], self.boxes[:count], self.labels[:count], masks)


def letterbox(image: np.ndarray, size: int = DETECTION_INPUT) -> tuple[np.ndarray, float, float, int, int]:
    """Letterbox with the worker's geometry: returns (canvas, scale_x, scale_y, left, top)."""
    height, width = image.shape[:2]
    new_w, new_h, left, top, _ = letterbox_geometry(width, height, InputSpec(width=size, height=size))
    canvas = np.full((size, size) + image.shape[2:], PAD_VALUE if image.ndim == 3 else 0, dtype=image.dtype)
    canvas[top : top + new_h, left : left + new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return canvas, new_w / width, new_h / height, left, top


def detection_sample(seed: int, with_masks: bool) -> DetectionSample:
    """One letterboxed training scene; masks are area-averaged down to prototype resolution."""
    scene = generate_scene(seed)
    canvas, sx, sy, left, top = letterbox(scene.image)
    boxes = scene.boxes * np.array([sx, sy, sx, sy], dtype=np.float32) + np.array([left, top, left, top], np.float32)
    masks = None
    if with_masks:
        masks = np.stack([_proto_mask(m) for m in scene.masks]).astype(np.float16)
    return DetectionSample(canvas, boxes, scene.labels, masks)


def _proto_mask(mask: np.ndarray) -> np.ndarray:
    canvas = letterbox(mask.astype(np.float32))[0]
    return cv2.resize(canvas, (PROTO_SIZE, PROTO_SIZE), interpolation=cv2.INTER_AREA)


@dataclass
class ClassificationData:
    """The classifier's training set: images, labels and per-cell class coverage."""

    images: Tensor  # S x 3 x 128 x 128 uint8
    labels: Tensor  # S int64
    coverage: Tensor  # S x (1 + nc) x 16 x 16 float16: background, then each class


def classification_sample(seed: int) -> tuple[np.ndarray, int, np.ndarray]:
    """One stretched 128x128 classification scene, its label and its class coverage map.

    ``coverage[c]`` is the fraction of each stride-8 cell covered by class ``c`` (index 0 is
    the background), so averaging it over cells gives each class's share of the image.
    """
    scene = generate_scene(seed, CLASSIFICATION_CONFIG)
    size = (CLASSIFIER_INPUT, CLASSIFIER_INPUT)
    cells = (CLASSIFIER_INPUT // COVERAGE_STRIDE, CLASSIFIER_INPUT // COVERAGE_STRIDE)
    per_class = np.zeros((len(CLASS_NAMES), scene.height, scene.width), dtype=np.float32)
    for label, mask in zip(scene.labels, scene.masks):
        per_class[label] += mask
    shares = np.stack([cv2.resize(m, cells, interpolation=cv2.INTER_AREA) for m in per_class])
    coverage = np.concatenate([1.0 - shares.sum(axis=0, keepdims=True), shares]).clip(0.0, 1.0)
    image = cv2.resize(scene.image, size, interpolation=cv2.INTER_LINEAR)
    return image, scene.class_label, coverage.astype(np.float16)


def build_detection_data(seeds: range, with_masks: bool, workers: int = 2) -> DetectionData:
    """Generate and stack the detection (or segmentation) training set."""
    with ProcessPoolExecutor(workers) as pool:
        samples = list(pool.map(detection_sample, seeds, [with_masks] * len(seeds), chunksize=32))
    images = torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2).contiguous()
    return DetectionData(
        images=images,
        boxes=[torch.from_numpy(s.boxes) for s in samples],
        labels=[torch.from_numpy(s.labels) for s in samples],
        masks=[torch.from_numpy(s.masks) for s in samples if s.masks is not None] if with_masks else None,
    )


def build_classification_data(seeds: range, workers: int = 2) -> ClassificationData:
    """Generate and stack the classifier's training set."""
    with ProcessPoolExecutor(workers) as pool:
        samples = list(pool.map(classification_sample, seeds, chunksize=32))
    return ClassificationData(
        images=torch.from_numpy(np.stack([s[0] for s in samples])).permute(0, 3, 1, 2).contiguous(),
        labels=torch.tensor([s[1] for s in samples], dtype=torch.int64),
        coverage=torch.from_numpy(np.stack([s[2] for s in samples])),
    )


def dihedral(image: Tensor, k: int) -> Tensor:
    """One of the 8 flips/rotations of a C x S x S image (all keep shape classes unchanged)."""
    if k & 4:
        image = image.transpose(-1, -2)
    if k & 1:
        image = image.flip(-1)
    if k & 2:
        image = image.flip(-2)
    return image


def dihedral_boxes(boxes: Tensor, k: int, size: int) -> Tensor:
    """Apply :func:`dihedral` ``k`` to xyxy boxes in an S x S image."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    if k & 4:
        x1, y1, x2, y2 = y1, x1, y2, x2
    if k & 1:
        x1, x2 = size - x2, size - x1
    if k & 2:
        y1, y2 = size - y2, size - y1
    return torch.stack([x1, y1, x2, y2], dim=-1)


@dataclass
class CornerData:
    """Training set of the geometry tasks: letterboxed scenes and every instance's corners."""

    images: Tensor  # S x 3 x 320 x 320 uint8
    boxes: list[Tensor]  # per scene M x 4 xyxy (visible part), input pixels
    labels: list[Tensor]  # per scene M, indices into CLASS_NAMES
    corners: list[Tensor]  # per scene M x 4 x 2, input pixels (a triangle's 4th slot is a copy of its 3rd)
    counts: list[Tensor]  # per scene M: 4 (rectangle), 3 (triangle) or 0 (circle)

    def subset(self, count: int) -> CornerData:
        """The first ``count`` scenes."""
        return CornerData(self.images[:count], self.boxes[:count], self.labels[:count], self.corners[:count],
                          self.counts[:count])


def corner_sample(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One letterboxed scene: (canvas, boxes, labels, corners M x 4 x 2, corner counts)."""
    scene = generate_scene(seed)
    canvas, sx, sy, left, top = letterbox(scene.image)
    scale, offset = np.array([sx, sy], np.float32), np.array([left, top], np.float32)
    boxes = scene.boxes * np.tile(scale, 2) + np.tile(offset, 2)
    corners = np.zeros((len(scene.labels), 4, 2), np.float32)
    counts = np.zeros(len(scene.labels), np.int64)
    for i, polygon in enumerate(scene.polygons):
        if len(polygon) <= 4:
            counts[i] = len(polygon)
            corners[i, : len(polygon)] = polygon * scale + offset
            corners[i, len(polygon) :] = corners[i, len(polygon) - 1]
    return canvas, boxes, scene.labels, corners, counts


def build_corner_data(seeds: range, workers: int = 2) -> CornerData:
    with ProcessPoolExecutor(workers) as pool:
        samples = list(pool.map(corner_sample, seeds, chunksize=32))
    return CornerData(
        images=torch.from_numpy(np.stack([s[0] for s in samples])).permute(0, 3, 1, 2).contiguous(),
        boxes=[torch.from_numpy(s[1]) for s in samples],
        labels=[torch.from_numpy(s[2]) for s in samples],
        corners=[torch.from_numpy(s[3]) for s in samples],
        counts=[torch.from_numpy(s[4]) for s in samples],
    )


def dihedral_points(points: Tensor, k: int, size: int) -> Tensor:
    """Apply :func:`dihedral` ``k`` to (..., 2) x, y points in an S x S image."""
    x, y = points.unbind(-1)
    if k & 4:
        x, y = y, x
    if k & 1:
        x = size - x
    if k & 2:
        y = size - y
    return torch.stack([x, y], dim=-1)
