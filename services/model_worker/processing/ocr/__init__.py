"""The OCR pipeline (PP-OCR: DB detection, 0/180 classification, CTC recognition) on numpy arrays.

Each step is a plain function (arrays in, arrays or results out) so a worker can batch each of
the three graphs across requests; :func:`read_text` chains them around three caller-supplied
model calls (each takes a batch array and returns the graph's output) for one image.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from services.model_worker.processing.ocr.detect import DetParams, det_boxes, det_preprocess, order_quad
from services.model_worker.processing.ocr.recognize import (
    cls_flip,
    cls_preprocess,
    crop_quad,
    ctc_decode,
    load_dictionary,
    rec_preprocess,
)
from services.model_worker.processing.ocr.text import OcrResult, TextLine, page_result, reading_order

__all__ = [
    "DetParams", "OcrResult", "TextLine", "cls_flip", "cls_preprocess", "crop_quad", "ctc_decode", "det_boxes",
    "det_preprocess", "load_dictionary", "order_quad", "page_result", "read_text", "reading_order", "rec_preprocess",
]

Model = Callable[[np.ndarray], np.ndarray]


def read_text(
    image_rgb: np.ndarray,
    det: Model,
    rec: Model,
    classes: list[str],
    cls: Model | None = None,
    params: DetParams = DetParams(),
    cls_threshold: float = 0.9,
    text_score: float = 0.5,
) -> OcrResult:
    """Detect, (optionally) un-rotate and recognise the text of an RGB uint8 image.

    Lines whose recognition confidence is under ``text_score`` are dropped (PaddleOCR's ``drop_score``).
    """
    bgr = np.ascontiguousarray(image_rgb[:, :, ::-1])
    det_input = det_preprocess(bgr, params)
    quads, box_scores = det_boxes(det(det_input.tensor[None])[0], det_input, params)
    crops = [crop_quad(bgr, q) for q in quads]
    if cls is not None and crops:
        crops, _ = cls_flip(crops, cls(cls_preprocess(crops)), cls_threshold)
    lines = []
    if crops:
        for quad, score, (text, confidence) in zip(quads, box_scores, ctc_decode(rec(rec_preprocess(crops)), classes)):
            text = text.strip()  # a space read at a crop's edge is padding, not text
            if confidence >= text_score and text:
                lines.append(TextLine(text, confidence, quad, float(score)))
    return page_result(lines)


def probability_map(outputs: list[np.ndarray], spec: object, transform: object, params: object) -> np.ndarray:
    """The layout decoder of a text detector: its probability map as it is (the OCR task runs the rest)."""
    return outputs[0]
