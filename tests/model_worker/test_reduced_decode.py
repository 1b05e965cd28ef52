"""JPEGs decoded at a reduced scale (FLEET_WORKER_JPEG_REDUCED_DECODE): when it applies, that the
geometry stays the full image's, and that the demo detector finds the same objects either way."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from fleet.paths import MODELS_DIR
from services.common.model_spec import InputSpec, ModelSpec, ResizeMode
from services.demo.scenes import TEST_SEEDS, generate_scene
from services.model_worker.images import ImageInput
from services.model_worker.pipeline import run_alone
from services.model_worker.processing.decode import ImageLimits, decode_scaled
from services.model_worker.processing.params import InferenceParams
from services.model_worker.processing.preprocess import decode_reduction
from services.model_worker.runtime import RuntimeOptions, open_session

PACKAGE = MODELS_DIR / "packages" / "shapes-det"


def _jpeg(rgb: np.ndarray, exif_orientation: int | None = None) -> bytes:
    buf = io.BytesIO()
    image = Image.fromarray(rgb)
    if exif_orientation is None:
        image.save(buf, "JPEG", quality=92)
    else:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        image.save(buf, "JPEG", quality=92, exif=exif)
    return buf.getvalue()


def _spec(mode: ResizeMode, width: int = 320, height: int = 320) -> InputSpec:
    return InputSpec(width=width, height=height, resize_mode=mode)


@pytest.mark.parametrize(("size", "mode", "factor"), [
    ((1920, 1080), ResizeMode.LETTERBOX, 4),  # 320x180 after the letterbox: 480x270 still covers it
    ((640, 640), ResizeMode.LETTERBOX, 2),
    ((639, 639), ResizeMode.LETTERBOX, 1),  # 319 px would have to be enlarged back to 320
    ((320, 240), ResizeMode.LETTERBOX, 1),
    ((1280, 960), ResizeMode.STRETCH, 2),  # the short side decides: 960 / 4 = 240 < 320
    ((4000, 4000), ResizeMode.STRETCH, 8),
    ((1920, 1080), ResizeMode.CENTER_CROP, 1),  # never for a centre crop
])
def test_the_reduction_keeps_the_image_at_least_as_large_as_what_it_is_resized_to(size, mode, factor) -> None:
    assert decode_reduction(*size, _spec(mode)) == factor


def test_a_reduced_decode_keeps_the_full_size_and_other_formats_decode_fully() -> None:
    rgb = cv2.resize(generate_scene(TEST_SEEDS).image, (1500, 1100), interpolation=cv2.INTER_CUBIC)
    spec = _spec(ResizeMode.LETTERBOX)
    decoded = decode_scaled(_jpeg(rgb), ImageLimits(), None, lambda w, h: decode_reduction(w, h, spec))
    assert decoded.pixels.shape == (275, 375, 3) and (decoded.width, decoded.height) == (1500, 1100)
    ok, png = cv2.imencode(".png", rgb)
    full = decode_scaled(png.tobytes(), ImageLimits(), None, lambda w, h: 8)
    assert full.pixels.shape == (1100, 1500, 3) and (full.width, full.height) == (1500, 1100)


def test_exif_rotation_is_applied_and_the_full_size_follows_it() -> None:
    rgb = np.zeros((800, 1400, 3), np.uint8)
    rgb[:100, :200] = 255  # a white corner, to see where the rotation puts it
    data = _jpeg(rgb, exif_orientation=6)  # "rotate 90 clockwise to display"
    spec = _spec(ResizeMode.LETTERBOX)
    full = decode_scaled(data, ImageLimits())
    reduced = decode_scaled(data, ImageLimits(), None, lambda w, h: decode_reduction(w, h, spec))
    assert full.pixels.shape[:2] == (1400, 800) and (full.width, full.height) == (800, 1400)
    assert reduced.pixels.shape[:2] == (350, 200) and (reduced.width, reduced.height) == (800, 1400)
    small = cv2.resize(full.pixels, (200, 350), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - reduced.pixels.astype(int)).mean() < 3  # the same picture, turned the same way


def test_the_detector_finds_the_same_objects_in_a_reduced_decode() -> None:
    spec = ModelSpec.from_package(PACKAGE)
    session = open_session(PACKAGE / spec.weights.file, spec, RuntimeOptions())
    params = InferenceParams(confidence=0.5).resolve(spec)
    matched = 0
    for seed in range(TEST_SEEDS, TEST_SEEDS + 6):
        scene = generate_scene(seed).image
        big = cv2.resize(scene, (scene.shape[1] * 3, scene.shape[0] * 3), interpolation=cv2.INTER_CUBIC)
        image = ImageInput(encoded=_jpeg(big))
        results = [run_alone(image, spec, ImageLimits(), params, session.run, reduced_decode=r)[1][0]
                   for r in (False, True)]
        full, reduced = results
        assert sorted(full.class_ids.tolist()) == sorted(reduced.class_ids.tolist()), seed
        for box in full.boxes_xyxy:  # each box found again within 1.5 % of the image's longer side
            nearest = np.abs(reduced.boxes_xyxy - box).max(axis=1).min()
            assert nearest <= 0.015 * max(big.shape[:2]), (seed, box, nearest)
            matched += 1
    assert matched >= 6


def test_a_visualization_is_drawn_on_the_full_decode() -> None:
    spec = ModelSpec.from_package(PACKAGE)
    session = open_session(PACKAGE / spec.weights.file, spec, RuntimeOptions())
    big = cv2.resize(generate_scene(TEST_SEEDS).image, (1600, 1200), interpolation=cv2.INTER_CUBIC)
    prepared, _, _, _ = run_alone(ImageInput(encoded=_jpeg(big)), spec, ImageLimits(),
                                  InferenceParams(visualize=True).resolve(spec), session.run, reduced_decode=True)
    assert prepared.pixels is not None and prepared.pixels.shape == (1200, 1600, 3)
