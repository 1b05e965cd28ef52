"""Ground truth of the geometry demo tasks: shape corners as keypoints, rectangles as oriented boxes.

Both tasks are read off the synthetic scenes (:mod:`services.demo.scenes`), whose instances keep the
vertices they were drawn from. No torch here: the trainer, the evaluation and the tests share it.

* Keypoints (``shapes-pose``): classes ``rectangle`` and ``triangle``; ``NUM_KEYPOINTS`` = 4 corner
  slots per instance in a canonical order (clockwise on screen, starting from the topmost corner),
  the fourth slot of a triangle being absent (visibility 0). Circles are background.
* Oriented boxes (``shapes-obb``): class ``rectangle``; centre, width >= height and angle in
  ``[-pi/4, 3pi/4)`` as Ultralytics writes them. Circles and triangles are background.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from services.demo.scenes import CLASS_NAMES, Scene

NUM_KEYPOINTS = 4
POSE_CLASSES: tuple[str, ...] = ("rectangle", "triangle")
OBB_CLASSES: tuple[str, ...] = ("rectangle",)
KEYPOINT_NAMES: tuple[str, ...] = ("corner-1", "corner-2", "corner-3", "corner-4")
#: Edges drawn between keypoints (a triangle's absent fourth corner drops the last two).
SKELETON: tuple[tuple[int, int], ...] = ((0, 1), (1, 2), (2, 3), (3, 0))
#: OKS sigma per keypoint: Ultralytics' choice for datasets without COCO's (1 / number of keypoints).
OKS_SIGMA = 1.0 / NUM_KEYPOINTS
_RECTANGLE = CLASS_NAMES.index("rectangle")
_TRIANGLE = CLASS_NAMES.index("triangle")


def canonical_corners(corners: np.ndarray) -> np.ndarray:
    """Corners (K x 2, K = 3 or 4) ordered clockwise on screen (y down), topmost first."""
    centre = corners.mean(axis=0)
    angles = np.arctan2(corners[:, 1] - centre[1], corners[:, 0] - centre[0])
    ordered = corners[np.argsort(angles, kind="stable")]
    start = int(np.argmin(ordered[:, 1]))
    return np.roll(ordered, -start, axis=0)


@dataclass(frozen=True)
class PoseTruth:
    boxes: np.ndarray  # M x 4 xyxy (the visible mask's box, as for detection)
    labels: np.ndarray  # M, indices into POSE_CLASSES
    keypoints: np.ndarray  # M x NUM_KEYPOINTS x 3: x, y, visibility (2 present, 0 absent)


def pose_truth(scene: Scene) -> PoseTruth:
    boxes, labels, keypoints = [], [], []
    for box, label, polygon in zip(scene.boxes, scene.labels, scene.polygons):
        if label not in (_RECTANGLE, _TRIANGLE):
            continue
        kp = np.zeros((NUM_KEYPOINTS, 3), np.float32)
        corners = canonical_corners(polygon)
        kp[: len(corners), :2] = corners
        kp[: len(corners), 2] = 2
        boxes.append(box)
        labels.append(POSE_CLASSES.index(CLASS_NAMES[label]))
        keypoints.append(kp)
    return PoseTruth(
        np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64),
        np.asarray(keypoints, np.float32).reshape(-1, NUM_KEYPOINTS, 3),
    )


def xywhr(corners: np.ndarray) -> np.ndarray:
    """A rectangle's 4 corners (in drawing order) -> cx, cy, w, h, angle (w >= h, angle in [-pi/4, 3pi/4))."""
    centre = corners.mean(axis=0)
    edge_a, edge_b = corners[1] - corners[0], corners[2] - corners[1]
    w, h = float(np.hypot(*edge_a)), float(np.hypot(*edge_b))
    angle = math.atan2(edge_a[1], edge_a[0])
    if w < h:
        w, h = h, w
        angle += math.pi / 2
    angle = (angle + math.pi / 4) % math.pi - math.pi / 4
    return np.array([centre[0], centre[1], w, h, angle], np.float32)


def obb_truth(scene: Scene) -> np.ndarray:
    """M x 5 (cx, cy, w, h, angle) of every rectangle in the scene (its whole drawn outline)."""
    rows = [xywhr(p) for label, p in zip(scene.labels, scene.polygons) if label == _RECTANGLE]
    return np.asarray(rows, np.float32).reshape(-1, 5)


def obb_corners(rboxes: np.ndarray) -> np.ndarray:
    """N x 5 (cx, cy, w, h, angle) -> N x 4 x 2 corners."""
    cx, cy, w, h, a = (rboxes[:, i : i + 1] for i in range(5))
    cos, sin = np.cos(a), np.sin(a)
    u = np.concatenate([w / 2 * cos, w / 2 * sin], axis=1)
    v = np.concatenate([-h / 2 * sin, h / 2 * cos], axis=1)
    c = np.concatenate([cx, cy], axis=1)
    return np.stack([c + u + v, c + u - v, c - u - v, c - u + v], axis=1)
