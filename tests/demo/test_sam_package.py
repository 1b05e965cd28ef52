"""The committed promptable-segmentation package (shapes-sam): files, I/O, accuracy on held-out scenes.

ONNX Runtime only; the prompts are the evaluation's (``services.demo.evaluate_sam``): one positive
point at the pixel farthest from the mask's boundary, and the ground-truth box.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from services.demo.evaluate_sam import SamSessions, object_prompts, segment
from services.demo.package import PACKAGES_DIR
from services.demo.sam_geometry import SAM_INPUT_SPEC, mask_iou
from services.demo.sam_package import EMBEDDING_SHAPE, LOW_RES_MASK, SAM_PACKAGE
from services.demo.scenes import TEST_SEEDS, generate_scene
from services.model_worker.artifacts import sha256_file
from services.model_worker.processing.preprocess import preprocess
from services.model_worker.processing.sam import masks_to_original, prompt_arrays
from services.common.model_spec import InputSpec, ModelSpec

PACKAGE = PACKAGES_DIR / SAM_PACKAGE
SEEDS = [TEST_SEEDS + 1, TEST_SEEDS + 5, TEST_SEEDS + 6, TEST_SEEDS + 7]


@pytest.fixture(scope="module")
def sessions() -> SamSessions:
    return SamSessions.load(PACKAGE)


def test_model_json_describes_the_graphs() -> None:
    spec = ModelSpec.from_package(PACKAGE)
    assert spec.input == SAM_INPUT_SPEC and (spec.weights.file, set(spec.graphs)) == ("encoder.onnx", {"decoder"})
    for weights in spec.files.values():
        assert sha256_file(PACKAGE / weights.file) == weights.sha256
        assert (PACKAGE / weights.file).stat().st_size < 4 * 1024 * 1024
    assert spec.metrics["mean_iou_one_point"] >= 0.85 and spec.metrics["mean_iou_box"] >= 0.9


def test_graphs_take_dynamic_batches_and_point_counts(sessions: SamSessions) -> None:
    names = [i.name for i in sessions.decoder.get_inputs()]
    assert names == ["image_embedding", "point_coords", "point_labels", "mask_input", "has_mask_input"]
    assert [o.name for o in sessions.decoder.get_outputs()] == ["masks", "iou_predictions"]
    pixels = np.zeros((2, 3, SAM_INPUT_SPEC.height, SAM_INPUT_SPEC.width), np.float32)
    embedding = sessions.encoder.run(None, {"pixels": pixels})[0]
    assert embedding.shape == (2, *EMBEDDING_SHAPE)
    for points in (1, 5):
        masks, iou = sessions.decoder.run(None, {
            "image_embedding": embedding, "point_coords": np.full((2, points, 2), 100.0, np.float32),
            "point_labels": np.ones((2, points), np.float32),
            "mask_input": np.zeros((2, 1, *LOW_RES_MASK), np.float32), "has_mask_input": np.zeros((2, 1), np.float32),
        })
        assert masks.shape == (2, 1, *LOW_RES_MASK) and iou.shape == (2, 1)


def test_point_and_box_prompts_segment_held_out_scenes(sessions: SamSessions) -> None:
    point_ious: list[float] = []
    box_ious: list[float] = []
    for seed in SEEDS:  # 21 objects, some small or partly hidden
        scene = generate_scene(seed)
        points, boxes = object_prompts(scene)
        predicted = segment(sessions, scene, points + boxes)
        n = len(scene.masks)
        point_ious += [mask_iou(p, t) for p, t in zip(predicted[:n], scene.masks)]
        box_ious += [mask_iou(p, t) for p, t in zip(predicted[n:], scene.masks)]
    assert np.mean(point_ious) >= 0.85 and min(point_ious) >= 0.5, point_ious
    assert np.mean(box_ious) >= 0.85 and min(box_ious) >= 0.5, box_ious


def test_the_previous_mask_is_taken_as_a_prompt(sessions: SamSessions) -> None:
    """Feeding back the box prompt's own low-res mask (SAM's iterative refinement) keeps it good."""
    scene = generate_scene(SEEDS[0])
    pixels, transform = preprocess(scene.image, SAM_INPUT_SPEC)
    embedding = sessions.encoder.run(None, {"pixels": pixels[None]})[0]
    coords, labels = prompt_arrays(transform, box=scene.boxes[0])
    feeds = {"image_embedding": embedding, "point_coords": coords, "point_labels": labels,
             "mask_input": np.zeros((1, 1, *LOW_RES_MASK), np.float32), "has_mask_input": np.zeros((1, 1), np.float32)}
    first, _ = sessions.decoder.run(None, feeds)
    feedback = {**feeds, "mask_input": first, "has_mask_input": np.ones((1, 1), np.float32)}
    second, _ = sessions.decoder.run(None, feedback)
    size = (SAM_INPUT_SPEC.width, SAM_INPUT_SPEC.height)
    before = mask_iou(masks_to_original(first[0], transform, size)[0] > 0, scene.masks[0])
    after = mask_iou(masks_to_original(second[0], transform, size)[0] > 0, scene.masks[0])
    assert after >= before - 0.05 and after >= 0.7, (before, after)
