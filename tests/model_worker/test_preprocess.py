"""Pre-processing against hand-computed expectations."""

from __future__ import annotations

import numpy as np
import pytest

from services.common.model_spec import InputSpec
from services.model_worker.processing.preprocess import letterbox_geometry, preprocess


def spec(**kw: object) -> InputSpec:
    return InputSpec(**{"width": 320, "height": 320, **kw})


def test_letterbox_wide_image_pads_top_and_bottom() -> None:
    # 800x400 into 320x320: ratio 0.4 -> 320x160, padded 80 rows above and below.
    assert letterbox_geometry(800, 400, spec()) == (320, 160, 0, 80, 0.4)
    image = np.full((400, 800, 3), 255, np.uint8)
    tensor, t = preprocess(image, spec())
    assert tensor.shape == (3, 320, 320) and tensor.dtype == np.float32
    assert (t.gain_x, t.gain_y, t.pad_x, t.pad_y) == (0.4, 0.4, 0.0, 80.0)
    assert np.allclose(tensor[:, :80], 114 / 255)  # padding
    assert np.allclose(tensor[:, 80:240], 1.0)  # the image
    assert np.allclose(tensor[:, 240:], 114 / 255)


def test_letterbox_tall_image_pads_left_and_right() -> None:
    # 300x600 into 320x320: ratio 320/600 -> 160x320, 80 columns each side.
    new_w, new_h, left, top, _ = letterbox_geometry(300, 600, spec())
    assert (new_w, new_h, left, top) == (160, 320, 80, 0)


def test_boxes_map_back_to_original_pixels() -> None:
    _, t = preprocess(np.zeros((400, 800, 3), np.uint8), spec())
    # A box at input (40, 120)-(120, 160) is original (100, 100)-(300, 200).
    back = t.boxes_to_original(np.array([[40, 120, 120, 160]], np.float32))
    assert np.allclose(back, [[100, 100, 300, 200]])


def test_boxes_are_clipped_to_the_image() -> None:
    _, t = preprocess(np.zeros((400, 800, 3), np.uint8), spec())
    back = t.boxes_to_original(np.array([[-10, 0, 400, 400]], np.float32))
    assert np.allclose(back, [[0, 0, 800, 400]])


def test_stretch_scales_each_axis() -> None:
    tensor, t = preprocess(np.zeros((100, 640, 3), np.uint8), spec(resize_mode="stretch"))
    assert tensor.shape == (3, 320, 320)
    assert (t.gain_x, t.gain_y, t.pad_x, t.pad_y) == (0.5, 3.2, 0.0, 0.0)


def test_channel_order_and_normalization() -> None:
    image = np.zeros((10, 10, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 255, 128, 0  # R, G, B
    s = spec(width=10, height=10, mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 0.5))
    rgb, _ = preprocess(image, s)
    assert rgb[:, 0, 0] == pytest.approx([(1 - 0.5) / 0.5, (128 / 255 - 0.5) / 0.25, (0 - 0.5) / 0.5], abs=1e-6)
    bgr, _ = preprocess(image, spec(width=10, height=10, color_order="bgr"))
    assert bgr[:, 0, 0] == pytest.approx([0.0, 128 / 255, 1.0], abs=1e-6)
