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

    @property
    def area(self) -> int:
        return int(self.mask.sum())


@dataclass(frozen=True)
class Detections:
    """Object-detection or instance-segmentation output for one image."""

    boxes_xyxy: np.ndarray  # float32 (N, 4), original-image pixels
    scores: np.ndarray  # float32 (N,), sorted descending
    class_ids: np.ndarray  # int64 (N,)
    masks: list[InstanceMask] | None = None  # instance segmentation only, aligned with boxes

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @staticmethod
    def empty(with_masks: bool = False) -> Detections:
        return Detections(
            np.zeros((0, 4), np.float32),
            np.zeros((0,), np.float32),
            np.zeros((0,), np.int64),
            [] if with_masks else None,
        )


@dataclass(frozen=True)
class Classification:
    """Classification output for one image: every class, best first."""

    class_ids: np.ndarray  # int64 (K,), sorted by score descending
    scores: np.ndarray  # float32 (K,)
    multi_label: bool = False
    predicted_class_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))

    @property
    def top_class_id(self) -> int | None:
        return int(self.class_ids[0]) if self.class_ids.size else None

    @property
    def top_score(self) -> float:
        return float(self.scores[0]) if self.scores.size else 0.0
