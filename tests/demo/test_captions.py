"""The caption grammar of the CLIP demo model."""

from __future__ import annotations

import random

import numpy as np

from services.demo.captions import (
    CLIP_CONFIG,
    TEMPLATES,
    caption,
    candidate_captions,
    candidate_counts,
    scene_counts,
    training_caption,
)
from services.demo.scenes import CLASS_NAMES, TEST_SEEDS, generate_scene


def test_canonical_captions() -> None:
    assert caption((1, 0, 0)) == "one circle"
    assert caption((0, 2, 0)) == "two rectangles"
    assert caption((2, 0, 1)) == "two circles and one triangle"
    assert caption((1, 2, 1)) == "one circle, two rectangles and one triangle"


def test_candidates_enumerate_every_scene_of_one_to_four_shapes() -> None:
    counts = candidate_counts()
    assert len(counts) == len(set(counts)) == 34  # C(4 + 3, 3) - 1 count vectors with 1..4 shapes
    assert all(1 <= sum(c) <= 4 and len(c) == len(CLASS_NAMES) for c in counts)
    captions = candidate_captions()
    assert len(set(captions)) == 34 and captions[0] == "one circle"
    for seed in range(TEST_SEEDS, TEST_SEEDS + 40):  # every held-out scene's caption is a candidate
        assert caption(scene_counts(generate_scene(seed, CLIP_CONFIG))) in captions


def test_scene_counts_follow_the_labels() -> None:
    scene = generate_scene(TEST_SEEDS, CLIP_CONFIG)
    counts = scene_counts(scene)
    assert sum(counts) == len(scene.labels)
    assert counts == tuple(int(n) for n in np.bincount(scene.labels, minlength=len(CLASS_NAMES)))


def test_training_captions_paraphrase_the_same_counts() -> None:
    rng = random.Random(0)
    seen = {training_caption((1, 2, 1), rng) for _ in range(200)}
    assert "one circle, two rectangles and one triangle" in seen
    assert "a photo of two rectangles, one triangle and one circle" in seen
    assert len(seen) > 20
    for text in seen:
        assert all(word in text for word in ("one circle", "two rectangles", "one triangle"))
        assert any(text.startswith(t.split("{}")[0]) and text.endswith(t.split("{}")[1]) for t in TEMPLATES[1:]) or (
            text.split(" ")[0] in ("one", "two"))
