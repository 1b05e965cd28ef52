"""Build data, train, export the packages, evaluate them and record the metrics.

Every run that makes a detector, segmentation or classification package trains the detector first
(``pose`` and ``obb`` alone fine-tune the committed ``shapes-det`` instead, read back from its ONNX
file): the segmentation model (the same architecture plus
prototype and mask-coefficient outputs) and the classifier (the same backbone and pyramid
with a coverage head) start from its weights and are fine-tuned. So ``--task seg`` or
``--task cls`` also trains the detector (without writing its packages), and ``--task all``
trains it once for all three.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from services.demo.evaluate import evaluate_package
from services.demo.package import DEMO_PACKAGES, MODEL_FILE, PACKAGES_DIR, update_metrics, write_model_json
from services.demo.scenes import CLASS_NAMES, TRAIN_SEEDS
from services.demo.corners import NUM_KEYPOINTS, OBB_CLASSES, POSE_CLASSES
from services.demo.train.data import build_classification_data, build_corner_data, build_detection_data
from services.demo.train.export import export_onnx
from services.demo.train.from_onnx import load_detector
from services.demo.train.loop import Log, Schedule, train_classifier, train_detector, train_geometry
from services.demo.train.models import (
    ClassifierExport,
    DETECTION_INPUT,
    ShapeClassifier,
    ShapeYolo,
    YoloV5Export,
    YoloV8Export,
    YoloV8ObbExport,
    YoloV8PoseExport,
    YoloV8SegExport,
    init_from_classes,
)
from services.model_worker.artifacts import sha256_file

TASKS = ("det", "seg", "cls", "pose", "obb")
#: Extra per-point outputs of the geometry models: x, y, visibility per corner; w, h, angle.
_EXTRA = {"pose": NUM_KEYPOINTS * 3, "obb": 3}


@dataclass(frozen=True)
class Plan:
    """How much to train one model."""

    train_images: int
    schedule: Schedule
    seed: int = 0


PLANS: dict[str, Plan] = {
    "det": Plan(train_images=2000, schedule=Schedule(epochs=10)),
    # Fine-tuning of the detector on the same scenes: lower peak learning rate, short warm-up.
    "seg": Plan(train_images=2000, schedule=Schedule(epochs=3, lr=3e-3, warmup_steps=20)),
    "cls": Plan(train_images=3000, schedule=Schedule(epochs=8, batch_size=64, lr=3e-3, warmup_steps=20)),
    # The geometry models fine-tune the detector (BatchNorms frozen); their extra outputs learn from scratch.
    "pose": Plan(train_images=2000, schedule=Schedule(epochs=12, lr=3e-3, warmup_steps=20)),
    "obb": Plan(train_images=1200, schedule=Schedule(epochs=6, lr=2e-3, warmup_steps=20)),
}


def scaled_plans(train_images: int | None, epochs: int | None) -> dict[str, Plan]:
    """The plans with optional overrides (for quick experiments)."""
    plans = dict(PLANS)
    for task, plan in plans.items():
        if train_images is not None:
            plan = replace(plan, train_images=train_images)
        if epochs is not None:
            plan = replace(plan, schedule=replace(plan.schedule, epochs=epochs))
        plans[task] = plan
    return plans


def run_tasks(
    tasks: list[str], plans: dict[str, Plan], out_dir: Path, eval_images: int, log: Log
) -> dict[str, dict[str, Any]]:
    """Train the given tasks; returns the metrics of every package written."""
    det_plan, seg_plan, cls_plan = plans["det"], plans["seg"], plans["cls"]
    results: dict[str, dict[str, Any]] = {}
    if not {"det", "seg", "cls"} & set(tasks):  # the geometry tasks alone fine-tune the committed detector
        weights = PACKAGES_DIR / "shapes-det" / MODEL_FILE
        detector = load_detector(weights, len(CLASS_NAMES), DETECTION_INPUT)
        base = f"the committed shapes-det package (sha256 {sha256_file(weights)[:16]}…)"
        return _train_geometry(tasks, plans, detector, 0.0, base, out_dir, eval_images, log)
    started = time.monotonic()
    count = max(det_plan.train_images, seg_plan.train_images if "seg" in tasks else 0)
    log(f"[det] generating {count} training scenes")
    data = build_detection_data(range(TRAIN_SEEDS, TRAIN_SEEDS + count), with_masks="seg" in tasks)
    torch.manual_seed(det_plan.seed)
    detector = ShapeYolo(len(CLASS_NAMES))
    _train_log(log, "det", detector)
    train_detector(detector, data.subset(det_plan.train_images), det_plan.schedule, det_plan.seed, log)
    det_seconds = time.monotonic() - started
    base = f"shapes-det of the same run ({det_plan.schedule.epochs} epochs, {det_seconds:.0f} s)"

    if "det" in tasks:
        exports: list[tuple[str, nn.Module]] = [
            ("shapes-det", YoloV8Export(detector)),
            ("shapes-det-v5", YoloV5Export(detector)),
        ]
        results.update(_publish(exports, _provenance(det_plan, det_seconds), out_dir, eval_images, log))
    if "seg" in tasks:
        started = time.monotonic()
        torch.manual_seed(seg_plan.seed)
        segmenter = ShapeYolo(len(CLASS_NAMES), segment=True)
        segmenter.init_from_detector(detector)
        _train_log(log, "seg", segmenter)
        train_detector(segmenter, data.subset(seg_plan.train_images), seg_plan.schedule, seg_plan.seed, log)
        provenance = _provenance(seg_plan, det_seconds + time.monotonic() - started, base)
        results.update(_publish([("shapes-seg", YoloV8SegExport(segmenter))], provenance, out_dir, eval_images, log))
    if "cls" in tasks:
        started = time.monotonic()
        log(f"[cls] generating {cls_plan.train_images} training scenes")
        cls_data = build_classification_data(range(TRAIN_SEEDS, TRAIN_SEEDS + cls_plan.train_images))
        torch.manual_seed(cls_plan.seed)
        classifier = ShapeClassifier(len(CLASS_NAMES))
        classifier.init_from_detector(detector)
        _train_log(log, "cls", classifier)
        train_classifier(classifier, cls_data, cls_plan.schedule, cls_plan.seed, log)
        provenance = _provenance(cls_plan, det_seconds + time.monotonic() - started, base)
        results.update(_publish([("shapes-cls", ClassifierExport(classifier))], provenance, out_dir, eval_images, log))
    results.update(_train_geometry(tasks, plans, detector, det_seconds, base, out_dir, eval_images, log))
    return results


def _train_geometry(tasks: list[str], plans: dict[str, Plan], detector: ShapeYolo, det_seconds: float, base: str,
                    out_dir: Path, eval_images: int, log: Log) -> dict[str, dict[str, Any]]:
    """Fine-tune the keypoint and oriented-box models from ``detector``."""
    results: dict[str, dict[str, Any]] = {}
    geometry = [t for t in ("pose", "obb") if t in tasks]
    if geometry:
        count = max(plans[t].train_images for t in geometry)
        log(f"[{'+'.join(geometry)}] generating {count} training scenes with corners")
        corners = build_corner_data(range(TRAIN_SEEDS, TRAIN_SEEDS + count))
    for task in geometry:
        started = time.monotonic()
        plan = plans[task]
        classes = POSE_CLASSES if task == "pose" else OBB_CLASSES
        torch.manual_seed(plan.seed)
        model = ShapeYolo(len(classes), extra=_EXTRA[task])
        init_from_classes(model, detector, [CLASS_NAMES.index(c) for c in classes])
        _train_log(log, task, model)
        train_geometry(model, corners.subset(plan.train_images), task, plan.schedule, plan.seed, log)
        provenance = _provenance(plan, det_seconds + time.monotonic() - started, base)
        wrapper = (YoloV8PoseExport(model, NUM_KEYPOINTS, POSE_CLASSES.index("triangle")) if task == "pose"
                   else YoloV8ObbExport(model))
        results.update(_publish([(f"shapes-{task}", wrapper)], provenance, out_dir, eval_images, log))
    return results


def _publish(
    exports: list[tuple[str, nn.Module]], provenance: dict[str, Any], out_dir: Path, eval_images: int, log: Log
) -> dict[str, dict[str, Any]]:
    """Export, write model.json, evaluate in ONNX Runtime and store the metrics."""
    results = {}
    for name, wrapper in exports:
        info = DEMO_PACKAGES[name]
        package_dir = out_dir / name
        shutil.rmtree(package_dir, ignore_errors=True)
        export_onnx(wrapper, info.input_size, package_dir / MODEL_FILE, info.outputs)
        write_model_json(package_dir, info, provenance)
        log(f"  {name}: exported to {package_dir}")
        if not eval_images:  # evaluate later: python -m services.demo.evaluate --write
            continue
        results[name] = evaluate_package(package_dir, eval_images)
        update_metrics(package_dir, results[name])
        log(f"  {name}: {results[name]}")
    return results


def _train_log(log: Log, task: str, model: nn.Module) -> None:
    log(f"[{task}] training {type(model).__name__} ({sum(p.numel() for p in model.parameters())} parameters)")


def _provenance(plan: Plan, seconds: float, initialized_from: str | None = None) -> dict[str, Any]:
    provenance = {
        "trainer": "services.demo.train",
        "seed": plan.seed,
        "epochs": plan.schedule.epochs,
        "train_images": plan.train_images,
        "torch": torch.__version__.split("+")[0],
        "trained_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "train_seconds": round(seconds, 1),
    }
    if initialized_from:
        provenance["initialized_from"] = initialized_from
    return provenance
