"""Promptable-segmentation prompt and mask mapping (services/model_worker/processing/sam.py)."""

from __future__ import annotations

import numpy as np
import pytest

from services.demo.sam_geometry import SAM_INPUT_SPEC
from services.model_worker.processing.preprocess import preprocess
from services.model_worker.processing.sam import masks_to_original, prompt_arrays


def _transform(width: int = 640, height: int = 480):
    return preprocess(np.zeros((height, width, 3), np.uint8), SAM_INPUT_SPEC)[1]


def test_points_scale_by_the_letterbox_gain_and_get_a_padding_point() -> None:
    coords, labels = prompt_arrays(_transform(), np.array([[100.0, 50.0], [640.0, 480.0]]), np.array([1, 0]))
    assert coords.shape == (1, 3, 2) and labels.tolist() == [[1.0, 0.0, -1.0]]
    assert coords[0].tolist() == [[50.0, 25.0], [320.0, 240.0], [0.0, 0.0]]  # gain 320 / 640


def test_a_box_becomes_two_corner_points_without_padding() -> None:
    coords, labels = prompt_arrays(_transform(), np.array([[10.0, 20.0]]), np.array([1]), np.array([0, 0, 64, 48]))
    assert labels.tolist() == [[1.0, 2.0, 3.0]]
    assert coords[0].tolist() == [[5.0, 10.0], [0.0, 0.0], [32.0, 24.0]]


def test_point_labels_must_be_positive_or_negative() -> None:
    with pytest.raises(ValueError, match="1 .positive. or 0"):
        prompt_arrays(_transform(), np.array([[1.0, 1.0]]), np.array([2]))
    with pytest.raises(ValueError, match="each point needs a label"):
        prompt_arrays(_transform(), np.array([[1.0, 1.0]]), None)


def test_masks_map_back_to_the_original_image_without_the_padding() -> None:
    transform = _transform(640, 480)  # resized to 320 x 240, padded below
    low = np.full((1, 80, 80), -10.0, np.float32)
    low[0, 0:60, 40:80] = 10.0  # the right half of the image part (rows 0..59 hold the image)
    masks = masks_to_original(low, transform, (320, 320)) > 0
    assert masks.shape == (1, 480, 640)
    assert masks[0, :470, 330:].all() and not masks[0, :, :310].any()  # the padding rows were cut
