"""Evaluate a promptable-segmentation package on held-out scenes with ONNX Runtime only (no torch).

``python -m services.demo.evaluate_sam [--package DIR] [--images 300] [--write]``

For every visible object of scenes ``TEST_SEEDS ..``: one positive point (the pixel farthest from
the mask's boundary) and, separately, the ground-truth box are the prompts; the decoder's low-res
logits are mapped back to the original image (``masks_to_original``) and thresholded at 0. The
figures are the mean mask IoU against the visible ground-truth masks at the original resolution.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from services.demo.package import PACKAGES_DIR
from services.demo.sam_geometry import SAM_INPUT_SPEC, deepest_point, mask_iou
from services.demo.sam_package import LOW_RES_MASK, SAM_PACKAGE, update_sam_metrics
from services.demo.scenes import TEST_SEEDS, Scene, generate_scene
from services.model_worker.processing.preprocess import preprocess
from services.model_worker.processing.sam import POSITIVE, masks_to_original, prompt_arrays

DEFAULT_IMAGES = 300


@dataclass
class SamSessions:
    encoder: ort.InferenceSession
    decoder: ort.InferenceSession

    @classmethod
    def load(cls, package_dir: Path) -> SamSessions:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        return cls(ort.InferenceSession(str(package_dir / "encoder.onnx"), options, providers=providers),
                   ort.InferenceSession(str(package_dir / "decoder.onnx"), options, providers=providers))


def segment(sessions: SamSessions, scene: Scene, prompts: list[dict[str, Any]]) -> list[np.ndarray]:
    """One boolean mask (original size) per prompt ({"points", "labels"} and/or {"box"})."""
    pixels, transform = preprocess(scene.image, SAM_INPUT_SPEC)
    embedding = sessions.encoder.run(None, {"pixels": pixels[None]})[0]
    masks = []
    for prompt in prompts:
        coords, labels = prompt_arrays(transform, prompt.get("points"), prompt.get("labels"), prompt.get("box"))
        low, _ = sessions.decoder.run(None, {
            "image_embedding": embedding, "point_coords": coords, "point_labels": labels,
            "mask_input": np.zeros((1, 1, *LOW_RES_MASK), dtype=np.float32),
            "has_mask_input": np.zeros((1, 1), dtype=np.float32),
        })
        masks.append(masks_to_original(low[0], transform, (SAM_INPUT_SPEC.width, SAM_INPUT_SPEC.height))[0] > 0)
    return masks


def object_prompts(scene: Scene) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per object: the one-point prompt (deepest pixel) and the box prompt."""
    points = [{"points": deepest_point(m)[None], "labels": np.array([POSITIVE])} for m in scene.masks]
    boxes = [{"box": box} for box in scene.boxes]
    return points, boxes


def evaluate_sam(package_dir: Path, images: int = DEFAULT_IMAGES, first_seed: int = TEST_SEEDS) -> dict[str, Any]:
    sessions = SamSessions.load(package_dir)
    point_ious: list[float] = []
    box_ious: list[float] = []
    for seed in range(first_seed, first_seed + images):
        scene = generate_scene(seed)
        points, boxes = object_prompts(scene)
        predicted = segment(sessions, scene, points + boxes)
        n = len(scene.masks)
        point_ious += [mask_iou(p, t) for p, t in zip(predicted[:n], scene.masks)]
        box_ious += [mask_iou(p, t) for p, t in zip(predicted[n:], scene.masks)]
    return {
        "dataset": f"synthetic held-out, seeds {first_seed}..{first_seed + images - 1}",
        "images": images,
        "objects": len(point_ious),
        "mean_iou_one_point": round(float(np.mean(point_ious)), 4),
        "mean_iou_box": round(float(np.mean(box_ious)), 4),
        "one_point_iou_below_0.5": int(np.sum(np.asarray(point_ious) < 0.5)),
        "box_iou_below_0.5": int(np.sum(np.asarray(box_ious) < 0.5)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.demo.evaluate_sam", description=__doc__.splitlines()[0])
    parser.add_argument("--package", type=Path, default=PACKAGES_DIR / SAM_PACKAGE)
    parser.add_argument("--images", type=int, default=DEFAULT_IMAGES)
    parser.add_argument("--write", action="store_true", help="record the figures in the package's model.json")
    args = parser.parse_args(argv)
    started = time.monotonic()
    metrics = evaluate_sam(args.package, args.images)
    print(json.dumps(metrics, indent=2))
    print(f"({time.monotonic() - started:.0f}s)")
    if args.write:
        update_sam_metrics(args.package, metrics)


if __name__ == "__main__":
    main()
