"""Annotated JPEG of a result: each model type's presenter draws on a BGR copy of the image."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

# A fixed palette (RGB), one colour per class id modulo its length.
PALETTE = np.array(
    [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
     (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40)],
    dtype=np.uint8,
)
JPEG_QUALITY = 85


def colour(class_id: int) -> tuple[int, int, int]:
    r, g, b = (int(c) for c in PALETTE[class_id % len(PALETTE)])
    return (b, g, r)  # drawing happens on a BGR copy


def label(img: np.ndarray, text: str, x: int, y: int, bgr: tuple[int, int, int]) -> None:
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    y = max(y, h + base + 2)
    cv2.rectangle(img, (x, y - h - base - 2), (x + w + 2, y), bgr, cv2.FILLED)
    cv2.putText(img, text, (x + 1, y - base), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)


def render(pixels: np.ndarray, draw: Callable[[np.ndarray], None]) -> bytes:
    """JPEG of the RGB ``pixels`` after ``draw`` annotated a BGR copy in place."""
    img = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    draw(img)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return buf.tobytes() if ok else b""
