"""The ``shapes-sam`` package's ``model.json`` (two graphs; no torch here), in the fleet's format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from services.demo.sam_geometry import SAM_INPUT_SIZE, SAM_INPUT_SPEC
from services.model_worker.artifacts import sha256_file

SAM_PACKAGE = "shapes-sam"
SPEC_FILE = "model.json"
EMBEDDING_SHAPE = (64, SAM_INPUT_SIZE // 8, SAM_INPUT_SIZE // 8)
LOW_RES_MASK = (SAM_INPUT_SIZE // 4, SAM_INPUT_SIZE // 4)


def _file(package_dir: Path, name: str) -> dict[str, Any]:
    path = package_dir / name
    return {"file": name, "sha256": sha256_file(path), "size_bytes": path.stat().st_size}


def write_sam_package(package_dir: Path, provenance: dict[str, Any]) -> dict[str, Any]:
    """model.json in the fleet's format: the encoder is the first graph (its output, the image embedding
    [64, S/8, S/8], is what the worker caches), the prompt decoder a further graph in SAM's ONNX convention
    (image_embedding, point_coords, point_labels, mask_input [1, S/4, S/4], has_mask_input -> masks,
    iou_predictions); prompts in input pixels, labels 1/0 points and 2/3 box corners, -1 padding."""
    document: dict[str, Any] = {
        "format_version": 1,
        "name": SAM_PACKAGE,
        "task_type": "promptable-segmentation",
        "model_type": "sam",
        "input": SAM_INPUT_SPEC.model_dump(mode="json"),
        "outputs": ["image_embedding"],
        "batch": {"max_batch_size": 16},
        "weights": _file(package_dir, "encoder.onnx"),
        "graphs": {"decoder": _file(package_dir, "decoder.onnx")},
        "inputs": [{"name": "image", "kind": "image"},
                   {"name": "points", "kind": "points", "required": False, "max_items": 16},
                   {"name": "boxes", "kind": "boxes", "required": False, "max_items": 1},
                   {"name": "mask", "kind": "tensor", "required": False}],
        "options": {"decoder_graph": "decoder", "mask_threshold": 0.0},
        "provenance": provenance,
        "metrics": {},
    }
    dump(package_dir, document)
    return document


def update_sam_metrics(package_dir: Path, metrics: dict[str, Any]) -> None:
    document = json.loads((package_dir / SPEC_FILE).read_text(encoding="utf-8"))
    document["metrics"] = metrics
    dump(package_dir, document)


def dump(package_dir: Path, document: dict[str, Any]) -> None:
    (package_dir / SPEC_FILE).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
