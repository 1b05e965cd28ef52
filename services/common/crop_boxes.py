"""Where a crop of a detection is cut: one rule for the workflow engine's dynamic crop and a worker's fused
detect -> crop -> classify plan, so both cut the same pixels."""

from __future__ import annotations

from collections.abc import Mapping

Box = tuple[int, int, int, int]  # x0, y0, x1, y1: whole pixels, x1 and y1 exclusive


def crop_box(prediction: Mapping[str, float], width: int, height: int) -> Box:
    """A prediction's box (Roboflow's centre ``x``, ``y``, ``width``, ``height``) rounded to whole pixels and
    clipped to a ``width`` x ``height`` image; a box that clips to nothing becomes the nearest single pixel."""
    cx, cy, bw, bh = prediction["x"], prediction["y"], prediction["width"], prediction["height"]
    x0, y0 = int(round(cx - bw / 2)), int(round(cy - bh / 2))
    x1, y1 = int(round(cx + bw / 2)), int(round(cy + bh / 2))
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if x1 <= x0 or y1 <= y0:
        x1, y1 = min(width, x0 + 1), min(height, y0 + 1)
        x0, y0 = x1 - 1, y1 - 1
    return x0, y0, x1, y1
