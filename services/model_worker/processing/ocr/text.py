"""OCR results and reading order: text lines with their quadrilaterals and the page's text."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TextLine:
    text: str
    confidence: float  # the recogniser's mean character probability
    quad: np.ndarray  # 4 x 2 float32 image pixels: top-left, top-right, bottom-right, bottom-left
    box_score: float  # the detector's mean text probability inside the box


@dataclass(frozen=True)
class OcrResult:
    lines: tuple[TextLine, ...]  # in reading order
    text: str  # the page: rows top to bottom joined by newlines, boxes in a row left to right by spaces


def reading_order(quads: np.ndarray) -> list[list[int]]:
    """Indices of ``quads`` grouped into rows (top to bottom), each row left to right.

    A box joins the current row when its vertical centre lies within the row's vertical extent
    and the two overlap by at least half of the shorter height; otherwise it starts a new row.
    """
    if len(quads) == 0:
        return []
    top = quads[:, :, 1].min(axis=1)
    bottom = quads[:, :, 1].max(axis=1)
    centre = (top + bottom) / 2
    rows: list[list[int]] = []
    row_top = row_bottom = 0.0
    for i in np.argsort(centre, kind="stable"):
        i = int(i)
        if rows:
            overlap = min(bottom[i], row_bottom) - max(top[i], row_top)
            shorter = min(bottom[i] - top[i], row_bottom - row_top)
            if row_top <= centre[i] <= row_bottom and overlap >= 0.5 * shorter:
                rows[-1].append(i)
                continue
        rows.append([i])
        row_top, row_bottom = float(top[i]), float(bottom[i])
    left = quads[:, :, 0].min(axis=1)
    return [sorted(row, key=lambda j: float(left[j])) for row in rows]


def page_result(lines: list[TextLine]) -> OcrResult:
    """Lines (any order) -> the result in reading order with the page's text."""
    if not lines:
        return OcrResult((), "")
    rows = reading_order(np.stack([line.quad for line in lines]))
    ordered = tuple(lines[i] for row in rows for i in row)
    text = "\n".join(" ".join(lines[i].text for i in row) for row in rows)
    return OcrResult(ordered, text)
