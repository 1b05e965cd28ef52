"""The ``shapes-sam`` package's draft ``model.json`` (two graphs; no torch here).

The fleet's ``ModelSpec`` does not describe multi-graph packages yet; this draft names what the
serving side needs: the graphs and their I/O, the image preprocessing as ``InputSpec`` fields, the
embedding and mask shapes, the prompt convention and the mask threshold.
"""

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
    low = list(LOW_RES_MASK)
    document: dict[str, Any] = {
        "format_version": 1,
        "name": SAM_PACKAGE,
        "task_type": "promptable-segmentation",
        "model_type": "sam",
        "input": SAM_INPUT_SPEC.model_dump(mode="json"),
        "graphs": {
            "encoder": {
                **_file(package_dir, "encoder.onnx"),
                "inputs": {"pixels": ["batch", 3, SAM_INPUT_SIZE, SAM_INPUT_SIZE]},
                "outputs": {"image_embedding": ["batch", *EMBEDDING_SHAPE]},
            },
            "decoder": {
                **_file(package_dir, "decoder.onnx"),
                "inputs": {
                    "image_embedding": ["batch", *EMBEDDING_SHAPE],
                    "point_coords": ["batch", "num_points", 2],
                    "point_labels": ["batch", "num_points"],
                    "mask_input": ["batch", 1, *low],
                    "has_mask_input": ["batch", 1],
                },
                "outputs": {"masks": ["batch", 1, *low], "iou_predictions": ["batch", 1]},
            },
        },
        "prompts": {
            "coordinates": "input pixels (original pixels x the letterbox gain; top-left anchor, no offset)",
            "point_labels": {"positive": 1, "negative": 0, "padding": -1, "box_top_left": 2, "box_bottom_right": 3},
            "pad_point_without_box": True,
            "mask_input": "the previous call's low-res masks (logits), or zeros with has_mask_input 0",
        },
        "mask_threshold": 0.0,
        "multimask_output": False,
        "batch": {"max_batch_size": 16},
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
