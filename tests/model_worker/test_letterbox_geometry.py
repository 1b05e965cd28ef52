"""Mapping back lands where the letterbox put the image, for many image and input sizes.

Where the image landed is found in the letterboxed tensor itself, not from the code's formulas: a
white image is letterboxed onto the grey pad and its first and last white rows and columns are
located. The resize maps the image's [0, w) onto those columns [L, R) linearly, so the independent
mapping is x0 = (x - L) * w / (R - L) (rows alike). Boxes, points and oriented boxes must follow it,
the mask window must be exactly (L, T, R, B), and a mask cut at a known input row must come back at
that row's place in the image. The sizes include the issue's 600x400 into 640x640 (placed at row
106; the pad used to be taken from the unrounded height, 107, and every box came back 0.94 px high).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.common.model_spec import InputSpec
from services.model_worker.processing.masks import instance_masks
from services.model_worker.processing.preprocess import Transform, preprocess

INPUTS = [(640, 640), (640, 384), (320, 320), (384, 640)]  # width, height of the model input
IMAGES = [(600, 400), (400, 600), (517, 293), (1001, 997), (333, 777), (640, 384), (641, 385), (1920, 1080),
          (1280, 720), (3000, 100), (100, 3000), (5000, 7), (7, 5000), (1, 1), (3, 2), (2, 3), (1, 1000),
          (1000, 1), (150, 100), (999, 1)]
RNG = np.random.default_rng(25)
IMAGES += [tuple(int(v) for v in RNG.integers(1, 2500, 2)) for _ in range(24)]  # type: ignore[misc]
EDGE_TOL = 0.01  # px in the image: float32 rounding only


def placed(canvas: np.ndarray, pad: int) -> tuple[int, int, int, int]:
    """(L, T, R, B): the half-open span of rows and columns that are not padding."""
    image = (canvas != pad).any(axis=2)
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    assert rows.size and cols.size, "the image vanished from the input"
    assert image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].all(), "the image is not one rectangle"
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def letterboxed(w0: int, h0: int, spec: InputSpec, reduce: int = 1) -> tuple[tuple[int, int, int, int], Transform]:
    """Where a white w0 x h0 image lands (decoded ``reduce`` times smaller when > 1), and its Transform."""
    pixels = np.full((max(1, h0 // reduce), max(1, w0 // reduce), 3), 255, np.uint8)
    tensor, t = preprocess(pixels, spec, (w0, h0))
    canvas = np.round(tensor * 255).astype(np.uint8).transpose(1, 2, 0)
    return placed(canvas, spec.pad_value), t


def independent(x: np.ndarray, y: np.ndarray, w0: int, h0: int, box: tuple[int, int, int, int]) -> np.ndarray:
    left, top, right, bottom = box
    return np.stack([(x - left) * w0 / (right - left), (y - top) * h0 / (bottom - top)], axis=-1)


def check(w0: int, h0: int, box: tuple[int, int, int, int], t: Transform) -> None:
    left, top, right, bottom = box
    assert t.mask_window == box
    # The placed image maps back to the whole image; a box inside it to the independent mapping.
    np.testing.assert_allclose(t.boxes_to_original(np.array([box], np.float32)), [[0, 0, w0, h0]], atol=EDGE_TOL)
    fx = np.array([0.0, 0.1, 0.25, 0.5, 0.77, 1.0])
    xs, ys = left + fx * (right - left), top + fx[::-1] * (bottom - top)
    want = independent(xs, ys, w0, h0, box)
    got = t.points_to_original(np.stack([xs, ys], axis=-1).astype(np.float32))
    np.testing.assert_allclose(got, want, atol=EDGE_TOL, rtol=1e-6)
    inner = np.array([[xs[1], ys[4], xs[3], ys[2]]], np.float32)
    np.testing.assert_allclose(t.boxes_to_original(inner), [[want[1, 0], want[4, 1], want[3, 0], want[2, 1]]],
                               atol=EDGE_TOL, rtol=1e-6)
    # Oriented boxes: the placed image as a box, upright and turned a quarter (its sides swapped).
    cx, cy, bw, bh = (left + right) / 2, (top + bottom) / 2, right - left, bottom - top
    rboxes = t.rboxes_to_original(np.array([[cx, cy, bw, bh, 0.0], [cx, cy, bh, bw, math.pi / 2]], np.float32))
    np.testing.assert_allclose(rboxes[:, :4], [[w0 / 2, h0 / 2, w0, h0], [w0 / 2, h0 / 2, h0, w0]],
                               atol=EDGE_TOL, rtol=1e-6)


@pytest.mark.parametrize("iw,ih", INPUTS)
@pytest.mark.parametrize("anchor", ["center", "top-left"])
def test_letterbox_maps_back_where_the_image_was_placed(iw: int, ih: int, anchor: str) -> None:
    spec = InputSpec(width=iw, height=ih, anchor=anchor)
    for w0, h0 in IMAGES:
        box, t = letterboxed(w0, h0, spec)
        if anchor == "top-left":
            assert box[:2] == (0, 0)
        else:  # centred: the padding before and after differ by at most one pixel
            assert abs(box[0] - (iw - box[2])) <= 1 and abs(box[1] - (ih - box[3])) <= 1, (w0, h0, box)
        assert box[2] - box[0] == iw or box[3] - box[1] == ih, (w0, h0, box)  # it fills one side
        check(w0, h0, box, t)


def test_the_issue_case_600x400_into_640x640() -> None:
    box, t = letterboxed(600, 400, InputSpec(width=640, height=640))
    assert box == (0, 106, 640, 533)  # 427 rows, 106 above and 107 below
    np.testing.assert_allclose(t.boxes_to_original(np.array([[0, 106, 640, 533]], np.float32)), [[0, 0, 600, 400]],
                               atol=1e-3)
    # A point on the image's middle row (input 106 + 213.5) comes back to row 200, not 0.94 px higher.
    assert t.points_to_original(np.array([[320, 319.5]], np.float32))[0, 1] == pytest.approx(200, abs=1e-3)


@pytest.mark.parametrize("w0,h0,reduce", [(4000, 3000, 4), (1999, 1001, 2), (6000, 333, 8)])
def test_reduced_decode_maps_back_to_the_full_image(w0: int, h0: int, reduce: int) -> None:
    box, t = letterboxed(w0, h0, InputSpec(width=640, height=640), reduce)
    assert (t.orig_width, t.orig_height) == (w0, h0)
    check(w0, h0, box, t)


@pytest.mark.parametrize("w0,h0", [(600, 400), (400, 600), (517, 293), (1001, 997), (150, 100), (3000, 100)])
@pytest.mark.parametrize("anchor", ["center", "top-left"])
def test_mask_cut_at_an_input_row_comes_back_at_that_place(w0: int, h0: int, anchor: str) -> None:
    """A mask positive on the placed image's first k rows (and first k columns) covers the image's
    first k * h0 / (B - T) rows (columns alike), to half a pixel: bilinear resizing crosses 0.5
    exactly where the step is."""
    spec = InputSpec(width=640, height=640, anchor=anchor)
    box, t = letterboxed(w0, h0, spec)
    left, top, right, bottom = box
    whole = np.array([[0, 0, 640, 640]], np.float32)
    for frac in (0.13, 0.29, 0.5, 0.61, 0.87):
        k_rows, k_cols = max(1, round(frac * (bottom - top))), max(1, round(frac * (right - left)))
        protos = np.full((2, 640, 640), -10.0, np.float32)  # at input resolution: upsampling is the identity
        protos[0, top : top + k_rows, :] = 10.0
        protos[1, :, left : left + k_cols] = 10.0
        rows_mask, cols_mask = (m.full(h0, w0) for m in instance_masks(
            np.array([[1.0, 0.0], [0.0, 1.0]], np.float32), protos, np.repeat(whole, 2, axis=0), t, spec))
        want_rows, want_cols = k_rows * h0 / (bottom - top), k_cols * w0 / (right - left)
        assert rows_mask.any(axis=1).sum() == pytest.approx(want_rows, abs=0.5 + 1e-6), (frac, want_rows)
        assert rows_mask.all(axis=1).sum() == rows_mask.any(axis=1).sum()  # whole rows, from the top
        assert cols_mask.any(axis=0).sum() == pytest.approx(want_cols, abs=0.5 + 1e-6), (frac, want_cols)
        assert cols_mask[:, : int(cols_mask.any(axis=0).sum())].all()


def test_stretch_maps_the_whole_input_to_the_whole_image() -> None:
    spec = InputSpec(width=640, height=384, resize_mode="stretch")
    for w0, h0 in [(600, 400), (1, 1000), (5000, 7)]:
        box, t = letterboxed(w0, h0, spec)
        assert box == (0, 0, 640, 384)
        check(w0, h0, box, t)


def test_center_crop_maps_the_input_to_the_cropped_square() -> None:
    """Only the middle 200x200 of a 300x200 image is white: the input must be all white, and its
    corners come back to the square's."""
    spec = InputSpec(width=64, height=64, resize_mode="center-crop", interpolation="area")
    pixels = np.zeros((200, 300, 3), np.uint8)
    pixels[:, 50:250] = 255
    tensor, t = preprocess(pixels, spec)
    assert (np.round(tensor * 255) == 255).all()
    np.testing.assert_allclose(t.boxes_to_original(np.array([[0, 0, 64, 64]], np.float32)), [[50, 0, 250, 200]],
                               atol=EDGE_TOL)
    np.testing.assert_allclose(t.points_to_original(np.array([[32, 16]], np.float32)), [[150, 50]], atol=EDGE_TOL)
