"""Instance masks from YOLO prototypes, decoded as Ultralytics does, computed only near each box.

For one instance, Ultralytics builds ``coeffs . protos`` at prototype resolution, upsamples it
bilinearly (half-pixel centres, edges clamped) to the input size, keeps the input pixels
``x1 <= j < x2, y1 <= i < y2`` of the input-space box and those above 0 (sigmoid > 0.5), cuts
the letterbox padding off and resizes that binary mask bilinearly to the image, keeping values
above 0.5. Every step is separable and the mask is zero outside the box, so the same numbers are
computed here with small interpolation matrices over the box's neighbourhood only.
"""

from __future__ import annotations

import math

import numpy as np

from services.common.model_spec import InputSpec
from services.model_worker.processing.preprocess import Transform
from services.model_worker.processing.results import InstanceMask


def _weights(out_coords: np.ndarray, in_size: int, scale: float, offset: int = 0) -> np.ndarray:
    """(len(out), in_size) bilinear weights for output pixels ``out_coords`` of a resize by ``scale``
    (input pixels per output pixel), half-pixel centres, clamped at the edges; ``offset`` shifts
    the input index (the matrix's column j is input pixel j + offset)."""
    src = np.maximum((out_coords + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    frac = src - i0
    frac[i0 == in_size - 1] = 0.0
    w = np.zeros((len(out_coords), in_size), np.float64)
    rows = np.arange(len(out_coords))
    np.add.at(w, (rows, i0), 1.0 - frac)
    np.add.at(w, (rows, i1), frac)
    return w[:, offset:] if offset else w


def _span(lo: float, hi: float, size: int) -> tuple[int, int]:
    """Integer pixels j with lo <= j < hi, clipped to [0, size)."""
    return max(0, math.ceil(lo)), min(size, math.ceil(hi))


def instance_masks(coeffs: np.ndarray, protos: np.ndarray, boxes_input: np.ndarray, transform: Transform,
                   spec: InputSpec) -> list[InstanceMask]:
    """One mask per detection at original-image resolution, cropped to where it can be non-zero.

    coeffs: (n, nm); protos: (nm, ph, pw); boxes_input: (n, 4) xyxy in input pixels (before mapping back).
    """
    nm, ph, pw = protos.shape
    if coeffs.shape[0] == 0:
        return []
    logits = (coeffs.astype(np.float32) @ protos.reshape(nm, -1).astype(np.float32)).reshape(-1, ph, pw)
    iw, ih = spec.width, spec.height
    # The input pixels the image was resized into (scale_masks' cut of the padding).
    left, top, right, bottom = transform.mask_window
    w0, h0 = transform.orig_width, transform.orig_height
    cw, ch = right - left, bottom - top
    sx, sy = cw / w0, ch / h0  # crop pixels per image pixel
    out: list[InstanceMask] = []
    for logit, (bx0, by0, bx1, by1) in zip(logits, boxes_input.astype(np.float64)):
        jx = _span(max(bx0, left), min(bx1, left + cw), iw)
        jy = _span(max(by0, top), min(by1, top + ch), ih)
        if jx[0] >= jx[1] or jy[0] >= jy[1]:
            out.append(InstanceMask(0, 0, np.zeros((0, 0), bool)))
            continue
        # Image pixels whose bilinear sample can reach the box's input pixels (one pixel of slack).
        ux = (max(0, int((jx[0] - left - 1.5) / sx) - 1), min(w0, int((jx[1] - left + 1.5) / sx) + 2))
        uy = (max(0, int((jy[0] - top - 1.5) / sy) - 1), min(h0, int((jy[1] - top + 1.5) / sy) + 2))
        # Input pixels (crop coordinates) those samples read.
        wx = _weights(np.arange(*ux, dtype=np.float64), cw, sx)
        wy = _weights(np.arange(*uy, dtype=np.float64), ch, sy)
        cx = np.flatnonzero(wx.any(axis=0))
        cy = np.flatnonzero(wy.any(axis=0))
        cols, rows = np.arange(cx[0], cx[-1] + 1) + left, np.arange(cy[0], cy[-1] + 1) + top
        # Upsampled logits at those input pixels, cropped to the box, thresholded at 0.
        up = _weights(rows.astype(np.float64), ph, ph / ih) @ logit.astype(np.float64) \
            @ _weights(cols.astype(np.float64), pw, pw / iw).T
        inside = ((cols >= jx[0]) & (cols < jx[1]))[None, :] & ((rows >= jy[0]) & (rows < jy[1]))[:, None]
        binary = ((up > 0) & inside).astype(np.float64)
        sampled = wy[:, cy[0] : cy[-1] + 1] @ binary @ wx[:, cx[0] : cx[-1] + 1].T
        out.append(InstanceMask(ux[0], uy[0], sampled > 0.5))
    return out
