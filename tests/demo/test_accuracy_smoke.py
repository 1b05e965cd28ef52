"""Smoke version of the accuracy check: the committed ONNX models in ONNX Runtime, decoded by
the model worker's own processing code (through services.demo.evaluate.Predictor).

Exact answers are checked on clean scenes (up to four shapes, none overlapping), where an exact
answer is a fair demand at a 0.5 confidence threshold; the full distribution, occlusion
included, is checked with COCO AP on a few held-out scenes (``python -m services.demo.evaluate``
measures it on 300).
"""

from __future__ import annotations

import numpy as np
import pytest

from services.demo.evaluate import Predictor, evaluate_classification, evaluate_detection
from services.demo.package import PACKAGES_DIR
from services.demo.scenes import CLASSIFICATION_CONFIG, CLEAN_CONFIG, TEST_SEEDS, Scene, generate_scene
from services.model_worker.processing.params import InferenceParams
from services.model_worker.processing.results import Classification, Detections

NUM_SCENES = 8
MIN_EXACT_SCENES = 7  # count, classes and every box IoU right
MIN_BOX_IOU = 0.8
MIN_MASK_IOU = 0.7
MIN_MEAN_MASK_IOU = 0.85
PARAMS = InferenceParams(confidence=0.5)  # package defaults otherwise: IoU 0.45, per-class NMS
DETECTORS = ["shapes-det", "shapes-det-v5", "shapes-seg"]


@pytest.fixture(scope="module")
def scenes() -> list[Scene]:
    return [generate_scene(seed, CLEAN_CONFIG) for seed in range(TEST_SEEDS, TEST_SEEDS + NUM_SCENES)]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes: (n, 4) x (m, 4) -> (n, m)."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).prod(axis=1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def match(scene: Scene, result: Detections) -> dict[int, int]:
    """Object -> detection pairs with the right class and box IoU >= 0.8 (greedy, best score first)."""
    ious = box_iou(result.boxes_xyxy, scene.boxes)
    pairs: dict[int, int] = {}
    for det in range(len(result)):
        for obj in np.argsort(-ious[det]):
            good = ious[det, obj] >= MIN_BOX_IOU and result.class_ids[det] == scene.labels[obj]
            if good and int(obj) not in pairs:
                pairs[int(obj)] = det
                break
    return pairs


@pytest.mark.parametrize("name", DETECTORS)
def test_finds_every_shape_in_clean_scenes(name: str, scenes: list[Scene]) -> None:
    results = Predictor(PACKAGES_DIR / name).predict([s.image for s in scenes], PARAMS)
    exact, found, objects, mask_ious = 0, 0, 0, []
    for scene, result in zip(scenes, results):
        assert isinstance(result, Detections)
        pairs = match(scene, result)
        exact += len(pairs) == len(scene.labels) == len(result)
        found += len(pairs)
        objects += len(scene.labels)
        if name == "shapes-seg":
            assert result.masks is not None and len(result.masks) == len(result)
            for obj, det in pairs.items():
                mask = result.masks[det].full(scene.height, scene.width)
                mask_ious.append((mask & scene.masks[obj]).sum() / (mask | scene.masks[obj]).sum())
    assert exact >= MIN_EXACT_SCENES, f"only {exact} of {NUM_SCENES} scenes decoded exactly"
    assert found >= 0.9 * objects, f"{found} of {objects} objects found with the right class and IoU >= 0.8"
    if name == "shapes-seg":
        assert min(mask_ious) >= MIN_MASK_IOU and np.mean(mask_ious) >= MIN_MEAN_MASK_IOU, mask_ious


@pytest.mark.parametrize("name", DETECTORS)
def test_coco_ap_on_held_out_scenes(name: str) -> None:
    metrics = evaluate_detection(Predictor(PACKAGES_DIR / name), count=24, start=TEST_SEEDS)
    assert metrics["map50"] >= 0.85, metrics
    if name == "shapes-seg":
        assert metrics["mask_map50"] >= 0.8, metrics


def test_yolov5_layout_decodes_like_yolov8(scenes: list[Scene]) -> None:
    images = [s.image for s in scenes[:3]]
    params = InferenceParams(confidence=0.01)
    v8 = Predictor(PACKAGES_DIR / "shapes-det").predict(images, params)
    v5 = Predictor(PACKAGES_DIR / "shapes-det-v5").predict(images, params)
    for a, b in zip(v8, v5):
        assert len(a) > 0
        np.testing.assert_array_equal(a.class_ids, b.class_ids)
        np.testing.assert_allclose(a.boxes_xyxy, b.boxes_xyxy, atol=1e-3)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)


def test_classifier_top1() -> None:
    scenes = [generate_scene(seed, CLASSIFICATION_CONFIG) for seed in range(TEST_SEEDS, TEST_SEEDS + 16)]
    assert len({s.class_label for s in scenes}) == 3  # every class is among the answers
    results = Predictor(PACKAGES_DIR / "shapes-cls").predict([s.image for s in scenes], PARAMS)
    correct = 0
    for scene, result in zip(scenes, results):
        assert isinstance(result, Classification)
        correct += result.top_class_id == scene.class_label
    assert correct >= 15, f"{correct} of 16"
    assert evaluate_classification(Predictor(PACKAGES_DIR / "shapes-cls"), 48, start=TEST_SEEDS)["top1"] >= 0.9


@pytest.mark.parametrize("name,metric", [("shapes-pose", "oks_ap50"), ("shapes-obb", "obb_ap50")])
def test_geometry_packages_on_held_out_scenes(name: str, metric: str) -> None:
    from services.demo.evaluate import evaluate_package

    metrics = evaluate_package(PACKAGES_DIR / name, count=24)
    assert metrics[metric] >= 0.8, metrics


def test_pose_keypoints_sit_on_the_corners(scenes: list[Scene]) -> None:
    from services.demo.corners import pose_truth

    results = Predictor(PACKAGES_DIR / "shapes-pose").predict([s.image for s in scenes], PARAMS)
    errors = []
    for scene, result in zip(scenes, results):
        truth = pose_truth(scene)
        for box, kp in zip(result.boxes_xyxy, result.keypoints):
            overlaps = box_iou(box[None], truth.boxes)[0]
            best = int(np.argmax(overlaps))
            if overlaps[best] < 0.5:
                continue
            present = truth.keypoints[best, :, 2] > 0
            errors += np.hypot(*(kp[present, :2] - truth.keypoints[best, present, :2]).T).tolist()
            assert ((kp[:, 2] >= 0.5) == present).all()  # a triangle's fourth corner is reported absent
    assert errors and np.median(errors) < 4.0, np.percentile(errors, [50, 90])
