"""The synthetic scene generator: deterministic, varied, and with consistent ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from services.demo.scenes import CLASS_NAMES, CLASSIFICATION_CONFIG, TEST_SEEDS, SceneConfig, generate_scene

SEEDS = range(TEST_SEEDS, TEST_SEEDS + 24)


@pytest.fixture(scope="module")
def scenes():
    return [generate_scene(seed) for seed in SEEDS]


def test_same_seed_same_scene() -> None:
    a, b = generate_scene(TEST_SEEDS + 7), generate_scene(TEST_SEEDS + 7)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.boxes, b.boxes)
    assert np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.masks, b.masks)


def test_different_seeds_differ(scenes) -> None:
    assert not np.array_equal(scenes[0].image[:50, :50], scenes[1].image[:50, :50])


def test_images_are_rgb_uint8_of_varied_size(scenes) -> None:
    config = SceneConfig()
    sizes = {(s.width, s.height) for s in scenes}
    assert len(sizes) == len(scenes)
    assert any(s.width > s.height for s in scenes) and any(s.height > s.width for s in scenes)
    for scene in scenes:
        assert scene.image.dtype == np.uint8 and scene.image.shape == (scene.height, scene.width, 3)
        assert config.width_range[0] <= scene.width <= config.width_range[1]
        assert config.height_range[0] <= scene.height <= config.height_range[1]


def test_all_classes_appear_and_counts_vary(scenes) -> None:
    labels = np.concatenate([s.labels for s in scenes])
    assert set(labels.tolist()) == set(range(len(CLASS_NAMES)))
    counts = {len(s.labels) for s in scenes}
    assert len(counts) >= 3 and max(counts) <= SceneConfig().num_shapes[1]


def test_boxes_are_the_tight_boxes_of_the_masks(scenes) -> None:
    for scene in scenes:
        assert scene.masks.dtype == bool and scene.masks.shape == (len(scene.labels), scene.height, scene.width)
        assert scene.boxes.shape == (len(scene.labels), 4) and scene.boxes.dtype == np.float32
        for box, mask in zip(scene.boxes, scene.masks):
            ys, xs = np.nonzero(mask)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == tuple(box.astype(int))
            assert 0 <= box[0] < box[2] <= scene.width and 0 <= box[1] < box[3] <= scene.height


def test_masks_are_disjoint_and_shapes_reasonably_sized(scenes) -> None:
    for scene in scenes:
        assert scene.masks.sum(axis=0).max() <= 1  # visible parts never overlap
        sides = np.minimum(scene.boxes[:, 2] - scene.boxes[:, 0], scene.boxes[:, 3] - scene.boxes[:, 1])
        assert sides.min() >= 16  # thinnest visible extent (occlusion keeps >= 80% of each shape)


def test_visible_masks_are_solid(scenes) -> None:
    """Occlusion leaves >= 80% of each shape, so every visible mask still fills much of its box."""
    for scene in scenes:
        for box, mask in zip(scene.boxes, scene.masks):
            box_area = (box[2] - box[0]) * (box[3] - box[1])
            assert mask.sum() >= 0.3 * box_area


def test_classification_scenes_have_a_dominant_class() -> None:
    for seed in SEEDS[:12]:
        scene = generate_scene(seed, CLASSIFICATION_CONFIG)
        areas = np.sort(scene.class_areas)[::-1]
        assert areas[0] >= CLASSIFICATION_CONFIG.min_dominance * areas[1]
        assert scene.class_label == int(np.argmax(scene.class_areas))
