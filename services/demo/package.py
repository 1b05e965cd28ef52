"""The demo model packages: their fixed descriptions and writing ``model.json`` (no torch here).

A package is ``models/packages/<name>/`` holding ``model.onnx`` and ``model.json``; the format
is documented in ``docs/model-package.md`` and parsed by ``services.common.model_spec``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.demo.corners import KEYPOINT_NAMES, OBB_CLASSES, POSE_CLASSES, SKELETON
from services.demo.scenes import CLASS_NAMES
from fleet.paths import MODELS_DIR
from services.model_worker.artifacts import sha256_file

PACKAGES_DIR = MODELS_DIR / "packages"
MODEL_FILE = "model.onnx"
SPEC_FILE = "model.json"
FORMAT_VERSION = 1
MAX_BATCH_SIZE = 16


@dataclass(frozen=True)
class PackageInfo:
    """What differs between the demo packages."""

    name: str
    task_type: str
    model_type: str
    input_size: int
    resize_mode: str
    outputs: tuple[str, ...]
    class_names: tuple[str, ...] = CLASS_NAMES
    extra: dict[str, Any] = field(default_factory=dict)  # task-specific model.json sections

    def input_spec(self) -> dict[str, Any]:
        return {
            "name": "images",
            "width": self.input_size,
            "height": self.input_size,
            "resize_mode": self.resize_mode,
            "color_order": "rgb",
            "pad_value": 114,
            "scale": 1.0 / 255.0,
            "mean": [0.0, 0.0, 0.0],
            "std": [1.0, 1.0, 1.0],
        }


DEMO_PACKAGES: dict[str, PackageInfo] = {
    info.name: info
    for info in (
        PackageInfo("shapes-det", "object-detection", "yolov8", 320, "letterbox", ("output0",)),
        PackageInfo("shapes-det-v5", "object-detection", "yolov5", 320, "letterbox", ("output0",)),
        PackageInfo("shapes-seg", "instance-segmentation", "yolov8-seg", 320, "letterbox", ("output0", "output1")),
        PackageInfo("shapes-cls", "classification", "yolov8-cls", 128, "stretch", ("output0",)),
        PackageInfo("shapes-pose", "keypoint-detection", "yolov8-pose", 320, "letterbox", ("output0",),
                    POSE_CLASSES, {"keypoints": {"names": list(KEYPOINT_NAMES),
                                                 "skeleton": [list(e) for e in SKELETON]}}),
        PackageInfo("shapes-obb", "oriented-detection", "yolov8-obb", 320, "letterbox", ("output0",),
                    OBB_CLASSES),
    )
}


def write_model_json(package_dir: Path, info: PackageInfo, provenance: dict[str, Any]) -> dict[str, Any]:
    """Write ``model.json`` for the ``model.onnx`` already in ``package_dir``; returns the document."""
    weights = package_dir / MODEL_FILE
    document: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "name": info.name,
        "task_type": info.task_type,
        "model_type": info.model_type,
        "class_names": list(info.class_names),
        "multi_label": False,
        "input": info.input_spec(),
        "outputs": list(info.outputs),
        "batch": {"max_batch_size": MAX_BATCH_SIZE},
        "defaults": {"confidence": 0.25, "iou_threshold": 0.45, "max_detections": 100},
        **info.extra,
        "weights": {"file": MODEL_FILE, "sha256": sha256_file(weights), "size_bytes": weights.stat().st_size},
        "provenance": provenance,
        "metrics": {},
    }
    _dump(package_dir, document)
    return document


def update_metrics(package_dir: Path, metrics: dict[str, Any]) -> None:
    """Replace the ``metrics`` section of an existing ``model.json``."""
    document = json.loads((package_dir / SPEC_FILE).read_text(encoding="utf-8"))
    document["metrics"] = metrics
    _dump(package_dir, document)


def _dump(package_dir: Path, document: dict[str, Any]) -> None:
    (package_dir / SPEC_FILE).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
