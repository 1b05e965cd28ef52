"""Sample images with known contents: ``models/samples/*.jpg|png`` + ``ground_truth.json``.

    python -m services.demo.samples [--out models/samples]

Every sample is a synthetic scene (see :mod:`services.demo.scenes`) with a clearly dominant class,
so each image has a fair answer for all three demo tasks: boxes and classes for detection and
segmentation, and ``dominant_class`` (largest visible area, at least twice the runner-up's)
for classification. The ground truth is in original-image pixels, xyxy.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from services.demo.scenes import CLASS_NAMES, SAMPLE_SEEDS, SceneConfig, generate_scene
from fleet.paths import SAMPLES_DIR

GROUND_TRUTH = "ground_truth.json"
JPEG_QUALITY = 95
_BASE = SceneConfig(num_shapes=(2, 5), min_dominance=2.0)


@dataclass(frozen=True)
class SampleSpec:
    file: str
    width_range: tuple[int, int]
    aspect_range: tuple[float, float]  # height / width


SAMPLES: tuple[SampleSpec, ...] = (
    SampleSpec("shapes-1.jpg", (760, 800), (0.7, 0.8)),  # large landscape
    SampleSpec("shapes-2.jpg", (320, 360), (1.3, 1.45)),  # small portrait
    SampleSpec("shapes-3.jpg", (560, 640), (0.55, 0.6)),  # wide
    SampleSpec("shapes-4.jpg", (440, 480), (0.95, 1.05)),  # squarish
    SampleSpec("shapes-5.png", (380, 420), (1.2, 1.3)),  # portrait (PNGs stay small: noise is incompressible)
    SampleSpec("shapes-6.png", (320, 360), (0.75, 0.8)),  # small landscape
)


def ground_truth_entry(spec: SampleSpec, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """The RGB image of one sample and its ground-truth record."""
    scene = generate_scene(seed, replace(_BASE, width_range=spec.width_range, aspect_range=spec.aspect_range))
    objects = [
        {"class_name": CLASS_NAMES[int(label)], "box_xyxy": [round(float(v), 1) for v in box]}
        for box, label in zip(scene.boxes, scene.labels)
    ]
    record = {
        "file": spec.file,
        "seed": seed,
        "width": scene.width,
        "height": scene.height,
        "dominant_class": CLASS_NAMES[scene.class_label],
        "objects": objects,
    }
    return scene.image, record


def write_samples(out_dir: Path) -> list[dict[str, Any]]:
    """Write every sample image and ``ground_truth.json``; returns the records."""
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for index, spec in enumerate(SAMPLES):
        image, record = ground_truth_entry(spec, SAMPLE_SEEDS + index)
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if spec.file.endswith(".jpg") else []
        if not cv2.imwrite(str(out_dir / spec.file), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params):
            raise OSError(f"could not write {out_dir / spec.file}")
        records.append(record)
    document = {
        "generator": "python -m services.demo.samples",
        "class_names": list(CLASS_NAMES),
        "box_format": "xyxy, original-image pixels",
        "images": records,
    }
    (out_dir / GROUND_TRUTH).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return records


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services.demo.samples", description="Write the demo sample images and their ground truth."
    )
    parser.add_argument("--out", type=Path, default=SAMPLES_DIR)
    args = parser.parse_args(argv)
    for record in write_samples(args.out):
        print(f"{args.out / record['file']}: {record['width']}x{record['height']}, {len(record['objects'])} objects")


if __name__ == "__main__":
    main()
