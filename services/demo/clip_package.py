"""The shapes-clip package: its fixed description and writing its draft ``model.json`` (no torch here).

The package holds two ONNX graphs and CLIP's BPE vocabulary:

* ``image_encoder.onnx``: ``pixels`` float32 [B, 3, 320, 320] -> ``embedding`` float32 [B, 128],
  pixels prepared as :data:`IMAGE_INPUT` says (letterboxed to 320x320 as the demo detectors are:
  bilinear, centred, padded with 114; RGB; ``x = pixel / 255``),
* ``text_encoder.onnx``: ``tokens`` int64 [B, 32] (``ClipTokenizer`` ids, context length 32)
  -> ``embedding`` float32 [B, 128],
* ``bpe_simple_vocab_16e6.txt.gz``: the tokenizer's merges (from open_clip, MIT licence).

Both embeddings are L2-normalised; ``logit_scale * image @ text.T`` are CLIP's logits.
The ``model.json`` written here is a :class:`services.common.model_spec.ModelSpec` of the embedding task.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from services.common.model_spec import InputSpec
from services.demo.package import PACKAGES_DIR
from services.model_worker.artifacts import sha256_file
from services.model_worker.processing.clip_tokenizer import VOCAB_FILE

NAME = "shapes-clip"
PACKAGE_DIR = PACKAGES_DIR / NAME
SPEC_FILE = "model.json"
IMAGE_FILE = "image_encoder.onnx"
TEXT_FILE = "text_encoder.onnx"
IMAGE_INPUT_NAME = "pixels"
TEXT_INPUT_NAME = "tokens"
OUTPUT_NAME = "embedding"
EMBEDDING_DIM = 128
CONTEXT_LENGTH = 32
INPUT_SIZE = 320  # the shapes-det detector's input, whose trained layers the image encoder reuses
MAX_BATCH_SIZE = 16

#: How an image becomes ``pixels`` (the worker's ``preprocess`` with this spec).
IMAGE_INPUT = InputSpec(
    name=IMAGE_INPUT_NAME,
    width=INPUT_SIZE,
    height=INPUT_SIZE,
    resize_mode="letterbox",
    interpolation="linear",
    anchor="center",
    color_order="rgb",
    pad_value=114,
    scale=1.0 / 255.0,
    mean=(0.0, 0.0, 0.0),
    std=(1.0, 1.0, 1.0),
)


def write_model_json(package_dir: Path, logit_scale: float, provenance: dict[str, Any]) -> dict[str, Any]:
    """Write ``model.json`` (the fleet's format) for the graphs and vocabulary already in ``package_dir``: the image
    encoder is the first graph, the text encoder a further one, the vocabulary an asset, texts a typed input."""
    document: dict[str, Any] = {
        "format_version": 1,
        "name": NAME,
        "task_type": "embedding",
        "model_type": "clip",
        "input": IMAGE_INPUT.model_dump(mode="json"),
        "outputs": [OUTPUT_NAME],
        "batch": {"max_batch_size": MAX_BATCH_SIZE},
        "weights": _file_fields(package_dir, IMAGE_FILE),
        "graphs": {"text_encoder": _file_fields(package_dir, TEXT_FILE)},
        "assets": {"vocab": _file_fields(package_dir, VOCAB_FILE)},
        "inputs": [{"name": "image", "kind": "image", "required": False},
                   {"name": "text", "kind": "texts", "required": False, "max_items": 64}],
        "options": {"text_graph": "text_encoder", "text_input": TEXT_INPUT_NAME, "text_output": OUTPUT_NAME,
                    "vocabulary": "vocab", "context_length": CONTEXT_LENGTH, "logit_scale": logit_scale},
        "provenance": {**provenance, "embedding_dim": EMBEDDING_DIM, "vocabulary_licence": "MIT (open_clip)"},
        "metrics": {},
    }
    _dump(package_dir, document)
    return document


def read_model_json(package_dir: Path = PACKAGE_DIR) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((package_dir / SPEC_FILE).read_text(encoding="utf-8"))
    return document


def update_metrics(package_dir: Path, metrics: dict[str, Any]) -> None:
    """Replace the ``metrics`` section of an existing ``model.json``."""
    document = read_model_json(package_dir)
    document["metrics"] = metrics
    _dump(package_dir, document)


def _file_fields(package_dir: Path, name: str) -> dict[str, Any]:
    path = package_dir / name
    return {"file": name, "sha256": sha256_file(path), "size_bytes": path.stat().st_size}


def _dump(package_dir: Path, document: dict[str, Any]) -> None:
    (package_dir / SPEC_FILE).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
