"""The committed sample images decode and match ground_truth.json and their generator."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from services.demo.samples import GROUND_TRUTH, SAMPLES, SAMPLES_DIR, ground_truth_entry
from services.demo.scenes import CLASS_NAMES, SAMPLE_SEEDS


@pytest.fixture(scope="module")
def ground_truth() -> dict:
    return json.loads((SAMPLES_DIR / GROUND_TRUTH).read_text())


def test_ground_truth_lists_every_image(ground_truth: dict) -> None:
    files = sorted(p.name for p in SAMPLES_DIR.iterdir() if p.suffix in (".jpg", ".png"))
    assert sorted(r["file"] for r in ground_truth["images"]) == files
    assert sum(f.endswith(".jpg") for f in files) >= 4 and sum(f.endswith(".png") for f in files) >= 2
    assert ground_truth["class_names"] == list(CLASS_NAMES)
    assert len({(r["width"], r["height"]) for r in ground_truth["images"]}) == len(files)


@pytest.mark.parametrize("index", range(len(SAMPLES)))
def test_sample_decodes_and_matches_its_generator(ground_truth: dict, index: int) -> None:
    spec = SAMPLES[index]
    record = ground_truth["images"][index]
    expected_image, expected_record = ground_truth_entry(spec, SAMPLE_SEEDS + index)
    assert record == expected_record

    decoded = cv2.imread(str(SAMPLES_DIR / spec.file), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape == (record["height"], record["width"], 3)
    decoded = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    if spec.file.endswith(".png"):
        assert np.array_equal(decoded, expected_image)  # lossless
    else:
        # JPEG drops much of the pixel noise but keeps the picture: compare low-pass versions.
        assert np.abs(_blur(decoded) - _blur(expected_image)).mean() < 2.0


def _blur(image: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(image.astype(np.float32), (7, 7), 0)


@pytest.mark.parametrize("index", range(len(SAMPLES)))
def test_ground_truth_objects_are_sane(ground_truth: dict, index: int) -> None:
    record = ground_truth["images"][index]
    assert record["objects"] and record["dominant_class"] in CLASS_NAMES
    for obj in record["objects"]:
        x1, y1, x2, y2 = obj["box_xyxy"]
        assert obj["class_name"] in CLASS_NAMES
        assert 0 <= x1 < x2 <= record["width"] and 0 <= y1 < y2 <= record["height"]
        assert min(x2 - x1, y2 - y1) >= 16
