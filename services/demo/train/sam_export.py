"""ONNX export of the promptable segmenter: ``encoder.onnx`` and ``decoder.onnx`` (opset 17).

Encoder: ``pixels`` [B, 3, 320, 320] -> ``image_embedding`` [B, 64, 40, 40]. Decoder (SAM's ONNX
names): ``image_embedding``, ``point_coords`` [B, N, 2], ``point_labels`` [B, N], ``mask_input``
[B, 1, 80, 80], ``has_mask_input`` [B, 1] -> ``masks`` [B, 1, 80, 80] (logits) and
``iou_predictions`` [B, 1]. The batch and the number of points are dynamic.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch

from services.demo.sam_geometry import SAM_INPUT_SIZE
from services.demo.train.export import OPSET
from services.demo.train.sam_model import EMBED_DIM, EMBED_STRIDE, MASK_STRIDE, SamDecoder, SamEncoder

ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
DECODER_INPUTS = ("image_embedding", "point_coords", "point_labels", "mask_input", "has_mask_input")
DECODER_OUTPUTS = ("masks", "iou_predictions")


def _export(module: torch.nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            dynamic: dict[str, dict[int, str]]) -> None:
    module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)


def export_sam(encoder: SamEncoder, decoder: SamDecoder, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    grid = SAM_INPUT_SIZE // EMBED_STRIDE
    low = SAM_INPUT_SIZE // MASK_STRIDE
    _export(encoder, (torch.zeros(1, 3, SAM_INPUT_SIZE, SAM_INPUT_SIZE),), out_dir / ENCODER_FILE,
            ["pixels"], ["image_embedding"], {"pixels": {0: "batch"}, "image_embedding": {0: "batch"}})
    args = (torch.zeros(1, EMBED_DIM, grid, grid), torch.zeros(1, 2, 2), torch.tensor([[1.0, -1.0]]),
            torch.zeros(1, 1, low, low), torch.zeros(1, 1))
    dynamic = {name: {0: "batch"} for name in (*DECODER_INPUTS, *DECODER_OUTPUTS)}
    dynamic["point_coords"] = {0: "batch", 1: "num_points"}
    dynamic["point_labels"] = {0: "batch", 1: "num_points"}
    _export(decoder, args, out_dir / DECODER_FILE, list(DECODER_INPUTS), list(DECODER_OUTPUTS), dynamic)
