"""Deterministic synthetic scenes of coloured shapes with exact ground truth.

Each scene is an RGB image of a random size with a few filled shapes (circles, rotated
rectangles, triangles) on a noisy, textured background. Shapes are drawn in order, so later
shapes occlude earlier ones; the ground truth describes what is *visible*:

* ``masks[i]``: the visible pixels of instance ``i`` (its own pixels minus those of later shapes),
* ``boxes[i]``: the tight xyxy box of that visible mask, in pixel-edge coordinates
  (``x2 = last column + 1``), so ``boxes`` and ``masks`` always agree exactly,
* ``labels[i]``: an index into :data:`CLASS_NAMES`.

Placements that would leave any instance less than ``min_visible`` visible are resampled, so
every object stays mostly visible and the ground truth is fair to a detector. The same seed
always yields the same scene (numpy ``default_rng`` + OpenCV drawing only; no torch here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

CLASS_NAMES: tuple[str, ...] = ("circle", "rectangle", "triangle")

# Disjoint seed ranges of the dataset splits.
TRAIN_SEEDS = 0
EVAL_SEEDS = 1_000_000
TEST_SEEDS = 2_000_000
SAMPLE_SEEDS = 3_000_000

_MIN_SIDE_PX = 24  # thinnest side of any rectangle or triangle, in pixels
_MAX_PLACEMENT_TRIES = 30
_MAX_SCENE_TRIES = 50


@dataclass(frozen=True)
class SceneConfig:
    """Knobs of the scene distribution; the defaults are what the demo models are trained on."""

    width_range: tuple[int, int] = (320, 800)
    aspect_range: tuple[float, float] = (0.55, 1.45)  # height / width
    height_range: tuple[int, int] = (240, 800)
    num_shapes: tuple[int, int] = (1, 6)  # inclusive
    size_range: tuple[float, float] = (0.15, 0.45)  # shape extent, fraction of min(H, W)
    min_size_px: int = 34  # smallest extent (circumscribed diameter), in pixels
    min_visible: float = 0.8  # every instance keeps at least this fraction of its pixels
    min_dominance: float = 1.0  # largest class area / runner-up class area (classification)


#: The detection/segmentation scene distribution.
DEFAULT_CONFIG = SceneConfig()
#: At most four shapes and no occlusion at all: every object is whole, so an exact answer
#: (count, classes, boxes with IoU >= 0.8) is a fair demand in smoke and end-to-end tests.
CLEAN_CONFIG = SceneConfig(num_shapes=(1, 4), min_visible=1.0)
#: Scenes for the classifier: fewer shapes and a clear winner, so the label is unambiguous.
CLASSIFICATION_CONFIG = SceneConfig(num_shapes=(1, 3), size_range=(0.3, 0.65), min_dominance=2.0)


@dataclass(frozen=True)
class Scene:
    """One generated image with its per-instance ground truth."""

    seed: int
    image: np.ndarray  # H x W x 3 uint8, RGB
    boxes: np.ndarray  # N x 4 float32, xyxy in image pixels
    labels: np.ndarray  # N int64, indices into CLASS_NAMES
    masks: np.ndarray  # N x H x W bool, visible part of each instance
    #: Per instance, the drawn outline's vertices (K x 2 float32, pixel-edge coordinates like
    #: ``boxes``): 4 corners for a rectangle, 3 for a triangle, 96 points for a circle.
    polygons: tuple[np.ndarray, ...] = ()

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def class_areas(self) -> np.ndarray:
        """Visible pixel count per class, shape (len(CLASS_NAMES),)."""
        areas = np.zeros(len(CLASS_NAMES), dtype=np.int64)
        for label, mask in zip(self.labels, self.masks):
            areas[label] += int(mask.sum())
        return areas

    @property
    def class_label(self) -> int:
        """Classification label: the class whose instances cover the most visible area."""
        return int(np.argmax(self.class_areas))


def generate_scene(seed: int, config: SceneConfig = DEFAULT_CONFIG) -> Scene:
    """Generate the scene for ``seed`` (deterministic for a given seed and config)."""
    rng = np.random.default_rng(seed)
    for _ in range(_MAX_SCENE_TRIES):
        scene = _try_scene(rng, seed, config)
        if scene is not None:
            return scene
    raise RuntimeError(f"could not generate a scene for seed {seed} with {config}")


def _try_scene(rng: np.random.Generator, seed: int, config: SceneConfig) -> Scene | None:
    width = int(rng.integers(config.width_range[0], config.width_range[1] + 1))
    aspect = rng.uniform(*config.aspect_range)
    height = int(np.clip(round(width * aspect), *config.height_range))
    image = _background(rng, height, width)

    full_masks: list[np.ndarray] = []
    visible: list[np.ndarray] = []
    labels: list[int] = []
    colours: list[np.ndarray] = []
    polygons: list[np.ndarray] = []
    for _ in range(int(rng.integers(config.num_shapes[0], config.num_shapes[1] + 1))):
        placed = _place_shape(rng, image, full_masks, visible, colours, config)
        if placed is None:
            continue
        label, full, colour, polygon = placed
        visible = [v & ~full for v in visible]
        visible.append(full)
        full_masks.append(full)
        labels.append(label)
        colours.append(colour)
        # fillPoly puts pixel centres at integer coordinates; boxes use pixel edges (+0.5).
        polygons.append((polygon + 0.5).astype(np.float32))
        image[full] = colour
    if not labels:
        return None

    masks = np.stack(visible)
    label_array = np.asarray(labels, dtype=np.int64)
    if config.min_dominance > 1.0 and not _has_dominant_class(masks, label_array, config.min_dominance):
        return None
    _add_noise(rng, image)
    return Scene(seed, image, _mask_boxes(masks), label_array, masks, tuple(polygons))


def _place_shape(
    rng: np.random.Generator,
    image: np.ndarray,
    full_masks: list[np.ndarray],
    visible: list[np.ndarray],
    colours: list[np.ndarray],
    config: SceneConfig,
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray] | None:
    """Sample a shape that keeps every instance visible enough; ``None`` if none fits."""
    height, width = image.shape[:2]
    short = min(height, width)
    for _ in range(_MAX_PLACEMENT_TRIES):
        extent = max(config.min_size_px, rng.uniform(*config.size_range) * short)
        radius = extent / 2.0
        if 2 * radius + 4 > short:
            continue
        center = (rng.uniform(radius + 2, width - radius - 2), rng.uniform(radius + 2, height - radius - 2))
        label = int(rng.integers(len(CLASS_NAMES)))
        polygon = _shape_polygon(rng, label, center, radius)
        full = _rasterize(polygon, height, width)
        if not _fits(full, full_masks, visible, config.min_visible):
            continue
        overlapped = [c for c, m in zip(colours, full_masks) if (m & full).any()]
        colour = _contrasting_colour(rng, image[full].mean(axis=0), overlapped)
        if colour is not None:
            return label, full, colour, polygon
    return None


def _shape_polygon(rng: np.random.Generator, label: int, center: tuple[float, float], radius: float) -> np.ndarray:
    """Vertices (K x 2 float) of a shape of class ``label`` inscribed in a circle of ``radius``."""
    angle = rng.uniform(0.0, 2.0 * math.pi)
    name = CLASS_NAMES[label]
    if name == "circle":
        thetas = np.linspace(0.0, 2.0 * math.pi, 96, endpoint=False)
        radii = np.full_like(thetas, radius)
    elif name == "rectangle":
        # Corners on the circle at +-a and pi-+a: sides 2r cos a and 2r sin a, short side >= _MIN_SIDE_PX.
        aspect = rng.uniform(0.45, 1.0)
        half_diag_angle = min(math.pi / 4, max(math.atan(aspect), math.asin(min(1.0, _MIN_SIDE_PX / (2 * radius)))))
        thetas = np.array([half_diag_angle, math.pi - half_diag_angle, math.pi + half_diag_angle, -half_diag_angle])
        radii = np.full(4, radius)
    else:  # triangle: jittered equilateral, so it never degenerates into a sliver
        thetas = np.array([0.0, 2.0 * math.pi / 3, 4.0 * math.pi / 3]) + rng.uniform(-0.3, 0.3, 3)
        radii = radius * rng.uniform(0.9, 1.0, 3)
    thetas = thetas + angle
    return np.stack([center[0] + radii * np.cos(thetas), center[1] + radii * np.sin(thetas)], axis=1)


def _rasterize(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    canvas = np.zeros((height, width), dtype=np.uint8)
    points = np.round(polygon * 16).astype(np.int32)  # 4 fractional bits for sub-pixel vertices
    cv2.fillPoly(canvas, [points], 1, lineType=cv2.LINE_8, shift=4)
    return canvas.astype(bool)


def _fits(full: np.ndarray, full_masks: list[np.ndarray], visible: list[np.ndarray], min_visible: float) -> bool:
    """True if drawing ``full`` on top keeps every earlier instance ``min_visible`` visible."""
    for whole, vis in zip(full_masks, visible):
        remaining = np.count_nonzero(vis & ~full)
        if remaining < min_visible * np.count_nonzero(whole):
            return False
    return True


def _contrasting_colour(
    rng: np.random.Generator, background: np.ndarray, overlapped: list[np.ndarray]
) -> np.ndarray | None:
    """A random RGB colour far enough from the background and from shapes it overlaps."""
    for _ in range(20):
        colour = rng.integers(0, 256, 3).astype(np.float64)
        if np.linalg.norm(colour - background) < 110:
            continue
        if any(np.linalg.norm(colour - other) < 90 for other in overlapped):
            continue
        return colour.astype(np.uint8)
    return None


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A textured background: gradient, smooth blobs or stripes around a random colour.

    The texture is smooth, so it is computed at half resolution and upsampled (much faster).
    """
    kind = int(rng.integers(3))
    base = rng.uniform(30, 225, 3).astype(np.float32)
    small_h, small_w = (height + 1) // 2, (width + 1) // 2
    ys = np.arange(small_h, dtype=np.float32)[:, None, None] * 2
    xs = np.arange(small_w, dtype=np.float32)[None, :, None] * 2
    if kind == 0:  # linear gradient towards a second colour
        theta = rng.uniform(0, 2 * math.pi)
        t = xs * math.cos(theta) + ys * math.sin(theta)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        other = rng.uniform(30, 225, 3).astype(np.float32)
        image = base + t * (other - base)
    elif kind == 1:  # smooth random blobs
        cells = rng.uniform(-1, 1, (int(rng.integers(3, 9)), int(rng.integers(3, 9)), 3)).astype(np.float32)
        blobs = cv2.resize(cells, (small_w, small_h), interpolation=cv2.INTER_CUBIC)
        image = base + blobs * np.float32(rng.uniform(20, 50))
    else:  # faint stripes
        theta = rng.uniform(0, math.pi)
        period = rng.uniform(8, 40)
        wave = np.sin((xs * math.cos(theta) + ys * math.sin(theta)) * np.float32(2 * math.pi / period))
        image = base + wave * rng.uniform(8, 25, 3).astype(np.float32)
    small = np.clip(image, 0, 255).astype(np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _add_noise(rng: np.random.Generator, image: np.ndarray) -> None:
    """Per-pixel uniform noise (std 3..14) over the whole image, in place."""
    amplitude = int(rng.integers(5, 25))
    noisy = rng.integers(-amplitude, amplitude + 1, image.shape, dtype=np.int16)
    noisy += image
    np.clip(noisy, 0, 255, out=noisy)
    image[...] = noisy


def _has_dominant_class(masks: np.ndarray, labels: np.ndarray, ratio: float) -> bool:
    areas = np.bincount(labels, weights=masks.reshape(len(masks), -1).sum(axis=1), minlength=len(CLASS_NAMES))
    top, second = np.sort(areas)[::-1][:2]
    return top >= ratio * second


def _mask_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight xyxy boxes (pixel edges) of boolean masks."""
    boxes = np.zeros((len(masks), 4), dtype=np.float32)
    for i, mask in enumerate(masks):
        ys = np.flatnonzero(mask.any(axis=1))
        xs = np.flatnonzero(mask.any(axis=0))
        boxes[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return boxes
