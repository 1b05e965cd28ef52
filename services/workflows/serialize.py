"""Run results -> the reference server's JSON: one object per input image, images as base64 JPEG objects."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from services.workflows.blocks.flow import GATE
from services.workflows.data import Classification, Detections, Failed, WImage

JPEG_QUALITY = 90


def jpeg(pixels: np.ndarray) -> bytes:
    import cv2  # noqa: PLC0415

    ok, data = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return data.tobytes() if ok else b""


def to_json(value: Any, parent: bool) -> Any:
    """A value as JSON (runs in the CPU pool: images are encoded here)."""
    if isinstance(value, Detections | Classification | Failed):
        return value.json(parent)
    if isinstance(value, WImage):
        data = value.encoded if value.pixels is None else jpeg(value.pixels)
        return {"type": "base64", "value": base64.b64encode(data).decode("ascii"),
                "parent_id": value.parent_id or value.image_id}
    if isinstance(value, dict):
        return {k: to_json(v, parent) for k, v in value.items() if k != GATE}
    if isinstance(value, list | tuple):
        return [to_json(v, parent) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
