"""Annotated JPEG of a result: boxes, labels and mask outlines (or the top classes)."""

from __future__ import annotations

import cv2
import numpy as np

from services.model_worker.processing.results import Classification, Detections

# A fixed palette (RGB), one colour per class id modulo its length.
PALETTE = np.array(
    [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
     (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40)],
    dtype=np.uint8,
)
JPEG_QUALITY = 85


def _colour(class_id: int) -> tuple[int, int, int]:
    r, g, b = (int(c) for c in PALETTE[class_id % len(PALETTE)])
    return (b, g, r)  # drawing happens on a BGR copy


def _label(img: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int]) -> None:
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    y = max(y, h + base + 2)
    cv2.rectangle(img, (x, y - h - base - 2), (x + w + 2, y), colour, cv2.FILLED)
    cv2.putText(img, text, (x + 1, y - base), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)


def render(
    pixels: np.ndarray,
    result: Detections | Classification,
    class_names: tuple[str, ...],
    polygons: list[np.ndarray] | None = None,
) -> bytes:
    img = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    if isinstance(result, Classification):
        for rank, (cid, score) in enumerate(zip(result.class_ids[:3], result.scores[:3])):
            _label(img, f"{class_names[cid]} {score:.2f}", 4, 22 + rank * 22, _colour(int(cid)))
    else:
        if result.masks is not None:
            overlay = img.copy()
            for mask, cid in zip(result.masks, result.class_ids):
                h, w = mask.mask.shape
                region = overlay[mask.y0 : mask.y0 + h, mask.x0 : mask.x0 + w]
                region[mask.mask[: region.shape[0], : region.shape[1]]] = _colour(int(cid))
            img = cv2.addWeighted(overlay, 0.4, img, 0.6, 0)
        for i, (box, score, cid) in enumerate(zip(result.boxes_xyxy, result.scores, result.class_ids)):
            colour = _colour(int(cid))
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            cv2.rectangle(img, (x0, y0), (x1, y1), colour, 2)
            if polygons is not None and len(polygons[i]) >= 3:
                cv2.polylines(img, [polygons[i].astype(np.int32)], True, colour, 1, cv2.LINE_AA)
            _label(img, f"{class_names[cid]} {score:.2f}", x0, y0, colour)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return buf.tobytes() if ok else b""
