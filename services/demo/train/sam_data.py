"""Training data of the promptable segmenter: letterboxed scenes, their masks and random prompts.

Each scene is letterboxed as the package's input spec says (top-left, 320x320); its visible masks
are kept at half the input resolution (160x160, soft: the area fraction of each cell), where the
loss is computed. Prompts follow SAM's ONNX convention (input-pixel coordinates, labels 1/0/-1/2/3)
and are drawn per object: one positive point, a box, a box and a point, several positive and
negative points, or a noisy previous mask with a point.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from services.demo.sam_geometry import SAM_INPUT_SPEC
from services.demo.scenes import TRAIN_SEEDS, generate_scene
from services.model_worker.processing.preprocess import resize_to_input

MAX_POINTS = 6
TARGET = 160  # loss resolution: half the input
LOW_RES = 80  # mask logits resolution: a quarter of the input
PAD_LABEL = -1.0


@dataclass
class SamData:
    images: np.ndarray  # S x 320 x 320 x 3 uint8, letterboxed
    masks: list[np.ndarray]  # per scene: K x 160 x 160 float16 soft masks
    boxes: list[np.ndarray]  # per scene: K x 4 input-pixel boxes
    valid: np.ndarray  # S x 160 x 160 bool: the cells that are image, not padding


def build_sam_data(count: int, first_seed: int = TRAIN_SEEDS) -> SamData:
    images, masks, boxes, valid = [], [], [], []
    for seed in range(first_seed, first_seed + count):
        scene = generate_scene(seed)
        resized, transform = resize_to_input(scene.image, SAM_INPUT_SPEC)
        _, _, new_w, new_h = transform.mask_window or (0, 0, SAM_INPUT_SPEC.width, SAM_INPUT_SPEC.height)
        soft = np.zeros((len(scene.masks), TARGET, TARGET), dtype=np.float16)
        for i, mask in enumerate(scene.masks):
            canvas = np.zeros((SAM_INPUT_SPEC.height, SAM_INPUT_SPEC.width), dtype=np.float32)
            canvas[:new_h, :new_w] = cv2.resize(mask.astype(np.float32), (new_w, new_h), interpolation=cv2.INTER_AREA)
            soft[i] = cv2.resize(canvas, (TARGET, TARGET), interpolation=cv2.INTER_AREA)
        images.append(resized)
        masks.append(soft)
        boxes.append(scene.boxes * np.float32(transform.gain_x))
        cells = np.zeros((TARGET, TARGET), dtype=bool)
        rows, cols = np.ceil(new_h * TARGET / SAM_INPUT_SPEC.height), np.ceil(new_w * TARGET / SAM_INPUT_SPEC.width)
        cells[: int(rows), : int(cols)] = True
        valid.append(cells)
    return SamData(np.stack(images), masks, boxes, np.stack(valid))


@dataclass
class Prompt:
    coords: np.ndarray  # MAX_POINTS x 2 float32
    labels: np.ndarray  # MAX_POINTS float32
    mask_input: np.ndarray  # 80 x 80 float32 logits
    has_mask: float


def _inside_point(mask: np.ndarray, rng: np.random.Generator, deepest: bool) -> np.ndarray:
    """A point (input pixels) inside a 160x160 soft mask: near its deepest cell or anywhere inside."""
    binary = (mask > 0.5).astype(np.uint8)
    if not binary.any():
        binary = (mask >= mask.max()).astype(np.uint8)
    if deepest:
        depth = cv2.distanceTransform(np.pad(binary, 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
        ys, xs = np.nonzero(depth >= 0.7 * depth.max())
    else:
        ys, xs = np.nonzero(binary)
    k = int(rng.integers(len(xs)))
    scale = SAM_INPUT_SPEC.width / TARGET
    return (np.array([xs[k], ys[k]], dtype=np.float32) + rng.uniform(0.0, 1.0, 2)) * scale


def _outside_point(masks: np.ndarray, index: int, valid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    others = [j for j in range(len(masks)) if j != index]
    if others and rng.random() < 0.5:
        return _inside_point(masks[int(rng.choice(others))] * (masks[index] < 0.5), rng, deepest=False)
    return _inside_point(((masks[index] < 0.05) & valid).astype(np.float32), rng, deepest=False)


def _jittered_box(box: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.5:
        return box.copy()
    w, h = box[2] - box[0], box[3] - box[1]
    noise = rng.normal(0.0, 0.05, 4) * np.array([w, h, w, h])
    return box + np.clip(noise, -8.0, 8.0).astype(np.float32)


def _noisy_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    low = cv2.resize(mask.astype(np.float32), (LOW_RES, LOW_RES), interpolation=cv2.INTER_AREA)
    binary = (low > 0.5).astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    change = rng.random()
    if change < 0.3:
        binary = cv2.erode(binary, kernel)
    elif change < 0.6:
        binary = cv2.dilate(binary, kernel)
    logits = (binary.astype(np.float32) * 2 - 1) * rng.uniform(2.0, 10.0)
    return logits + rng.normal(0.0, 1.5, logits.shape).astype(np.float32)


def sample_prompt(masks: np.ndarray, box: np.ndarray, index: int, valid: np.ndarray,
                  rng: np.random.Generator) -> Prompt:
    """A random prompt for object ``index`` of a scene (``valid``: the unpadded 160x160 cells)."""
    mask = masks[index].astype(np.float32)
    points: list[np.ndarray] = []
    labels: list[float] = []
    mask_input = np.zeros((LOW_RES, LOW_RES), dtype=np.float32)
    has_mask = 0.0
    kind = rng.random()
    if kind < 0.35:  # one positive point (SAM adds a padding point when there is no box)
        points, labels = [_inside_point(mask, rng, rng.random() < 0.6)], [1.0]
    elif kind < 0.6:  # a box
        corners = _jittered_box(box, rng)
        points, labels = [corners[:2], corners[2:]], [2.0, 3.0]
    elif kind < 0.7:  # a box and a point
        corners = _jittered_box(box, rng)
        points, labels = [_inside_point(mask, rng, False), corners[:2], corners[2:]], [1.0, 2.0, 3.0]
    elif kind < 0.88:  # several positive and negative points
        for _ in range(int(rng.integers(1, 4))):
            points.append(_inside_point(mask, rng, False))
            labels.append(1.0)
        for _ in range(int(rng.integers(1, 3))):
            points.append(_outside_point(masks, index, valid, rng))
            labels.append(0.0)
    else:  # a previous mask and a point
        points, labels = [_inside_point(mask, rng, False)], [1.0]
        mask_input, has_mask = _noisy_mask(mask, rng), 1.0
    coords = np.zeros((MAX_POINTS, 2), dtype=np.float32)
    label_array = np.full(MAX_POINTS, PAD_LABEL, dtype=np.float32)
    coords[: len(points)] = np.stack(points)
    label_array[: len(labels)] = labels
    return Prompt(coords, label_array, mask_input, has_mask)
