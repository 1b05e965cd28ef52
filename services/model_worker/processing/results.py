"""Post-processed results of one image, in original-image pixel coordinates."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass(frozen=True)
class InstanceMask:
    """A binary mask covering one detection's box; ``x0, y0`` is its top-left in the image."""

    x0: int
    y0: int
    mask: np.ndarray  # bool, (box height, box width)

    def full(self, height: int, width: int) -> np.ndarray:
        """The mask pasted into an all-false ``height x width`` image."""
        out = np.zeros((height, width), dtype=bool)
        h = max(0, min(self.mask.shape[0], height - self.y0))
        w = max(0, min(self.mask.shape[1], width - self.x0))
        out[self.y0 : self.y0 + h, self.x0 : self.x0 + w] = self.mask[:h, :w]
        return out

    def polygon(self) -> np.ndarray:
        """The outline of the largest connected part as (K, 2) float32 image points; empty if none."""
        if not self.mask.any():
            return np.zeros((0, 2), dtype=np.float32)
        contours, _ = cv2.findContours(self.mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        largest = max(contours, key=cv2.contourArea)
        points = largest.reshape(-1, 2).astype(np.float32)
        points += np.array([self.x0, self.y0], dtype=np.float32)
        return points

    def parts(self) -> list[tuple[np.ndarray, bool]]:
        """Every outline of the mask as ((K, 2) float32 image points, is_hole): each connected part
        and each hole in it (OpenCV's two-level contour hierarchy)."""
        if not self.mask.any():
            return []
        contours, hierarchy = cv2.findContours(self.mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        offset = np.array([self.x0, self.y0], dtype=np.float32)
        return [(c.reshape(-1, 2).astype(np.float32) + offset, bool(h[3] >= 0))
                for c, h in zip(contours, hierarchy[0])]

    def rle(self, height: int, width: int) -> np.ndarray:
        """COCO's uncompressed run-length encoding of the full-image mask: column-major run lengths,
        starting with a (possibly empty) run of zeros."""
        flat = self.full(height, width).ravel(order="F")
        edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        bounds = np.concatenate([[0], edges, [flat.size]])
        runs = np.diff(bounds)
        return np.concatenate([[0], runs]).astype(np.uint32) if flat.size and flat[0] else runs.astype(np.uint32)

    @property
    def area(self) -> int:
        return int(self.mask.sum())


@dataclass(frozen=True)
class Detections:
    """Detection output for one image (boxes; masks, keypoints or oriented boxes by task)."""

    boxes_xyxy: np.ndarray  # float32 (N, 4), original-image pixels
    scores: np.ndarray  # float32 (N,), sorted descending
    class_ids: np.ndarray  # int64 (N,)
    masks: list[InstanceMask] | None = None  # instance segmentation only, aligned with boxes
    keypoints: np.ndarray | None = None  # keypoint models: float32 (N, K, 3) x, y, confidence
    rboxes: np.ndarray | None = None  # oriented boxes: float32 (N, 5) cx, cy, w, h, angle (radians)

    def __len__(self) -> int:
        return int(self.scores.shape[0])



@dataclass(frozen=True)
class Classification:
    """Classification output for one image: the classes (all, or the best ``top_k``), best first."""

    class_ids: np.ndarray  # int64 (K,), sorted by score descending
    scores: np.ndarray  # float32 (K,)
    multi_label: bool = False
    predicted_class_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    probabilities: np.ndarray | None = None  # float32 (nc,): every class's score, in class order

    def probability(self, class_id: int) -> float:
        if self.probabilities is not None:
            return float(self.probabilities[class_id])
        return float(self.scores[np.flatnonzero(self.class_ids == class_id)[0]])

    @property
    def top_class_id(self) -> int | None:
        return int(self.class_ids[0]) if self.class_ids.size else None

    @property
    def top_score(self) -> float:
        return float(self.scores[0]) if self.scores.size else 0.0
