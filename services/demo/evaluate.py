"""Accuracy of the exported demo packages on held-out synthetic scenes.

Runs each package's ``model.onnx`` in ONNX Runtime and decodes it with the model worker's own
pre- and post-processing (``services.model_worker.processing``), so the numbers describe what
the fleet serves. Detection and segmentation are scored with pycocotools' COCOeval (bbox and
segm: AP@0.5 and AP@0.5:0.95), classification with top-1 accuracy, keypoints with COCO's OKS AP
and oriented boxes with rotated-IoU AP (``services.demo.geometry_eval``).

    python -m services.demo.evaluate [--packages models/packages] [--images 300] [--write]
    python -m services.demo.evaluate --camera 2.5 [--reduced-decode]   # as JPEGs 2.5x larger
"""

from __future__ import annotations

import argparse
import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from services.demo.camera import Camera
from services.demo.geometry_eval import evaluate_obb, evaluate_pose
from services.demo.package import DEMO_PACKAGES, PACKAGES_DIR, update_metrics
from services.demo.scenes import (
    CLASS_NAMES,
    CLASSIFICATION_CONFIG,
    DEFAULT_CONFIG,
    EVAL_SEEDS,
    Scene,
    SceneConfig,
    generate_scene,
)
from services.common.model_spec import ModelSpec, TaskType
from services.model_worker.processing.params import InferenceParams
from services.model_worker.processing.postprocess import postprocess
from services.model_worker.processing.preprocess import preprocess
from services.model_worker.processing.results import Classification, Detections
from services.model_worker.runtime import output_names

DEFAULT_IMAGES = 300
# The usual COCO-evaluation settings: keep low-confidence detections so the PR curve is complete.
EVAL_PARAMS = InferenceParams(confidence=0.001, iou_threshold=0.6, max_detections=100)
_BATCH = 16


class Predictor:
    """One package in ONNX Runtime, decoded with the worker's processing code."""

    def __init__(self, package_dir: Path, threads: int = 2, camera: Camera | None = None) -> None:
        self.spec = ModelSpec.from_package(package_dir)
        self.camera = camera
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(package_dir / self.spec.weights.file), options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = output_names(self.spec, [o.name for o in self.session.get_outputs()])

    def predict(self, images: list[np.ndarray], params: InferenceParams = EVAL_PARAMS) -> list[Any]:
        """Decode a batch of RGB uint8 images into Detections or Classification results."""
        resolved = params.resolve(self.spec)
        prepare = self.camera.prepare if self.camera is not None else preprocess
        tensors, transforms = zip(*(prepare(image, self.spec.input) for image in images))
        outputs = self.session.run(self.output_names, {self.input_name: np.stack(tensors)})
        return [
            postprocess([out[i] for out in outputs], self.spec, transform, resolved)
            for i, transform in enumerate(transforms)
        ]


def scenes(count: int, config: SceneConfig = DEFAULT_CONFIG, start: int = EVAL_SEEDS) -> Iterator[Scene]:
    """The held-out scenes (seeds ``start`` .. ``start + count - 1``)."""
    for seed in range(start, start + count):
        yield generate_scene(seed, config)


def _batched(items: Iterator[Scene], size: int) -> Iterator[list[Scene]]:
    batch: list[Scene] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _rle(mask: np.ndarray) -> dict[str, Any]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def _coco_ap(ground_truth: dict[str, Any], detections: list[dict[str, Any]], iou_type: str) -> tuple[float, float]:
    """(AP@0.5, AP@0.5:0.95) from COCOeval, its console output silenced."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = ground_truth
        coco.createIndex()
        if not detections:
            return 0.0, 0.0
        evaluator = COCOeval(coco, coco.loadRes(detections), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[1]), float(evaluator.stats[0])


def evaluate_detection(predictor: Predictor, count: int, start: int = EVAL_SEEDS) -> dict[str, Any]:
    """COCO box (and, for segmentation, mask) AP on ``count`` scenes from seed ``start``."""
    with_masks = predictor.spec.task_type == TaskType.INSTANCE_SEGMENTATION
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    detections: list[dict[str, Any]] = []
    for batch in _batched(scenes(count, start=start), _BATCH):
        for scene, result in zip(batch, predictor.predict([s.image for s in batch])):
            assert isinstance(result, Detections)
            images.append({"id": scene.seed, "width": scene.width, "height": scene.height})
            for box, label, mask in zip(scene.boxes, scene.labels, scene.masks):
                x1, y1, x2, y2 = (float(v) for v in box)
                annotations.append({
                    "id": len(annotations) + 1, "image_id": scene.seed, "category_id": int(label) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": int(mask.sum()), "iscrowd": 0,
                    "segmentation": _rle(mask),
                })  # fmt: skip
            for i, (box, score, class_id) in enumerate(zip(result.boxes_xyxy, result.scores, result.class_ids)):
                x1, y1, x2, y2 = (float(v) for v in box)
                detection = {
                    "image_id": scene.seed, "category_id": int(class_id) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(score),
                }  # fmt: skip
                if with_masks and result.masks is not None:
                    detection["segmentation"] = _rle(result.masks[i].full(scene.height, scene.width))
                detections.append(detection)
    ground_truth = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": name} for i, name in enumerate(CLASS_NAMES)],
    }
    boxes_only = [{k: v for k, v in d.items() if k != "segmentation"} for d in detections]
    box50, box = _coco_ap(ground_truth, boxes_only, "bbox")
    metrics: dict[str, Any] = {"images": count, "map50": round(box50, 4), "map50_95": round(box, 4)}
    if with_masks:
        mask50, mask = _coco_ap(ground_truth, detections, "segm")
        metrics.update(mask_map50=round(mask50, 4), mask_map50_95=round(mask, 4))
    return metrics


def evaluate_classification(predictor: Predictor, count: int, start: int = EVAL_SEEDS) -> dict[str, Any]:
    """Top-1 accuracy on ``count`` classification scenes from seed ``start``."""
    correct = 0
    for batch in _batched(scenes(count, CLASSIFICATION_CONFIG, start), _BATCH):
        for scene, result in zip(batch, predictor.predict([s.image for s in batch])):
            assert isinstance(result, Classification)
            correct += int(result.top_class_id == scene.class_label)
    return {"images": count, "top1": round(correct / count, 4)}


def evaluate_package(package_dir: Path, count: int = DEFAULT_IMAGES, camera: Camera | None = None) -> dict[str, Any]:
    """Metrics of one package, in the shape of model.json's ``metrics`` section."""
    predictor = Predictor(package_dir, camera=camera)
    task = predictor.spec.task_type
    if task == TaskType.CLASSIFICATION:
        metrics = evaluate_classification(predictor, count)
    elif task in (TaskType.KEYPOINT_DETECTION, TaskType.ORIENTED_DETECTION):
        evaluate = evaluate_pose if task == TaskType.KEYPOINT_DETECTION else evaluate_obb
        metrics = evaluate(predictor, list(_batched(scenes(count), _BATCH)), count)
    else:
        metrics = evaluate_detection(predictor, count)
    dataset = f"synthetic held-out, seeds {EVAL_SEEDS}..{EVAL_SEEDS + count - 1}"
    return {"dataset": dataset, **metrics}


def format_table(rows: dict[str, dict[str, Any]]) -> str:
    """A plain-text table of package metrics."""
    columns = ("images", "map50", "map50_95", "mask_map50", "mask_map50_95", "top1", "oks_ap50", "obb_ap50")
    lines = [f"{'package':<15}" + "".join(f"{c:>14}" for c in columns)]
    for name, metrics in rows.items():
        cells = (metrics.get(c, "-") for c in columns)
        lines.append(f"{name:<15}" + "".join(f"{c:>14.4f}" if isinstance(c, float) else f"{c:>14}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.demo.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", type=Path, default=PACKAGES_DIR, help="directory of model packages")
    parser.add_argument("--images", type=int, default=DEFAULT_IMAGES, help="held-out scenes per package")
    parser.add_argument("--write", action="store_true", help="store the metrics in each model.json")
    parser.add_argument("--camera", type=float, default=0.0, metavar="UPSCALE",
                        help="send each scene enlarged UPSCALE times as a JPEG (quality 90), decoded by the worker's code")
    parser.add_argument("--reduced-decode", action="store_true",
                        help="with --camera: decode JPEGs at a reduced scale where the worker's setting would")
    parser.add_argument("names", nargs="*", help="only these packages (default: every demo package)")
    args = parser.parse_args(argv)
    if args.write and args.camera:
        parser.error("--write stores the metrics of the scenes as they are; leave out --camera")
    rows = {}
    for name in args.names or DEMO_PACKAGES:
        package_dir = args.packages / name
        if not (package_dir / "model.json").is_file():
            print(f"{name}: no package in {package_dir} (run python -m services.demo.train)")
            continue
        camera = Camera(args.camera, reduced_decode=args.reduced_decode) if args.camera else None
        rows[name] = evaluate_package(package_dir, args.images, camera)
        if camera is not None:
            print(f"{name}: images decoded at 1/n scale, by n: {dict(sorted(camera.factors.items()))}")
        if args.write:
            update_metrics(package_dir, rows[name])
    print(format_table(rows))


if __name__ == "__main__":
    main()
