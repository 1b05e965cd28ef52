"""Captions of synthetic scenes for the CLIP-style demo model (no torch here).

A caption counts the shapes of each class, in class order: ``"one circle"``,
``"two circles and one triangle"``, ``"one circle, two rectangles and one triangle"``. The scenes
are :data:`CLIP_CONFIG` (one to four whole shapes, no occlusion), so every count is exact.

Colour is left out: scenes draw each shape in a uniformly random RGB colour, and any palette name
("red", "blue") would be ambiguous near its boundaries, so a caption could not be told right or
wrong by its colour words.

The zero-shot candidate set is the grammar's enumeration: every caption of one to four shapes
(:func:`candidate_captions`, 34 of them). Training also sees paraphrases (:func:`training_caption`:
a few templates, classes in any order); evaluation uses the canonical caption only.
"""

from __future__ import annotations

import itertools
import random

from services.demo.scenes import CLASS_NAMES, CLEAN_CONFIG, Scene

#: The scene distribution of the CLIP model: the clean scenes of the end-to-end tests.
CLIP_CONFIG = CLEAN_CONFIG
MAX_SHAPES = CLIP_CONFIG.num_shapes[1]
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six")
PLURALS = {"circle": "circles", "rectangle": "rectangles", "triangle": "triangles"}
TEMPLATES = ("{}", "a photo of {}", "an image with {}", "a picture of {}.")

Counts = tuple[int, ...]  # shapes per class, in CLASS_NAMES order


def scene_counts(scene: Scene) -> Counts:
    """How many shapes of each class the scene holds."""
    return tuple(int((scene.labels == k).sum()) for k in range(len(CLASS_NAMES)))


def caption(counts: Counts) -> str:
    """The canonical caption: classes in CLASS_NAMES order, number words, no template."""
    return _join([_part(n, name) for n, name in zip(counts, CLASS_NAMES) if n])


def training_caption(counts: Counts, rng: random.Random) -> str:
    """A paraphrase of ``caption(counts)``: classes in a random order inside a random template."""
    parts = [_part(n, name) for n, name in zip(counts, CLASS_NAMES) if n]
    rng.shuffle(parts)
    return rng.choice(TEMPLATES).format(_join(parts))


def candidate_counts(max_shapes: int = MAX_SHAPES) -> list[Counts]:
    """Every count vector of 1..max_shapes shapes, smallest totals first."""
    every = itertools.product(range(max_shapes + 1), repeat=len(CLASS_NAMES))
    return sorted((c for c in every if 1 <= sum(c) <= max_shapes), key=lambda c: (sum(c), [-n for n in c]))


def candidate_captions(max_shapes: int = MAX_SHAPES) -> list[str]:
    """The zero-shot candidates: the canonical caption of every count vector of 1..max_shapes shapes."""
    return [caption(c) for c in candidate_counts(max_shapes)]


def _part(count: int, name: str) -> str:
    return f"{NUMBER_WORDS[count]} {name if count == 1 else PLURALS[name]}"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
