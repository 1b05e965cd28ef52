"""Export a Segment Anything model (Meta's ``segment-anything`` package) to ONNX as a fleet export.

Needs the ``reference`` extra (torch, segment-anything). The architecture comes from the package's own
builders: ``vit_b``, ``vit_l`` and ``vit_h`` (``sam_model_registry``), or ``vit_tiny``: ``_build_sam`` with a
smaller image encoder (embed 192, depth 4, 3 heads, global attention at blocks 1 and 3) and everything else
as in every SAM (1024 px input, 256 x 64 x 64 embedding, the same prompt encoder and mask decoder), quick
enough for tests on two CPUs. Weights are random unless ``--checkpoint`` gives Meta's ``.pth``. It writes:

- ``encoder.onnx``: the normalised, padded image [N, 3, 1024, 1024] -> ``image_embedding`` [N, 256, 64, 64],
  with the fleet's package draft in its metadata (``fleet.package``);
- ``decoder.onnx``: ``segment_anything.utils.onnx.SamOnnxModel`` exported as SAM's own
  ``scripts/export_onnx_model.py`` does (inputs image_embeddings, point_coords, point_labels, mask_input,
  has_mask_input, orig_im_size; outputs masks at the original size, iou_predictions, low_res_masks), with
  ``return_single_mask`` as in SAM's ONNX example: the best of the multimask outputs for one point or a box,
  the single-mask output for more prompts.

The input spec is SAM's ``ResizeLongestSide(1024)`` (PIL bilinear) with its pixel mean and std, padded at
the bottom and right with zeros after normalisation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from services.packaging import torch_export

ENCODER_FILE, DECODER_FILE = "encoder.onnx", "decoder.onnx"
TINY = {"encoder_embed_dim": 192, "encoder_depth": 4, "encoder_num_heads": 3, "encoder_global_attn_indexes": [1, 3]}


def build(variant: str, checkpoint: Path | None) -> Any:
    from segment_anything.build_sam import _build_sam, sam_model_registry  # noqa: PLC0415

    path = str(checkpoint) if checkpoint else None
    if variant == "vit_tiny":
        return _build_sam(**TINY, checkpoint=path)
    if variant not in sam_model_registry or variant == "default":
        raise ValueError(f"SAM variant {variant!r}: use vit_b, vit_l, vit_h or vit_tiny")
    return sam_model_registry[variant](checkpoint=path)


def input_spec(sam: Any) -> dict[str, Any]:
    size = int(sam.image_encoder.img_size)
    return {"name": "pixels", "width": size, "height": size, "resize_mode": "letterbox", "anchor": "top-left",
            "interpolation": "pil-bilinear", "color_order": "rgb", "scale": 1.0,
            "mean": [round(float(v), 5) for v in sam.pixel_mean.flatten()],
            "std": [round(float(v), 5) for v in sam.pixel_std.flatten()],
            "pad_value": 0, "pad_normalized": True}


def export(variant: str, out_dir: Path, *, checkpoint: Path | None = None, seed: int = 0, sam: Any = None) -> Path:
    """Write the export of ``sam`` (default: ``build(variant)`` after ``manual_seed(seed)``) into ``out_dir``;
    returns the encoder's path."""
    torch = torch_export.torch_cpu()
    import segment_anything  # noqa: PLC0415
    from segment_anything.utils.onnx import SamOnnxModel  # noqa: PLC0415

    if sam is None:
        torch.manual_seed(seed)
        sam = build(variant, checkpoint).eval()
    sam.requires_grad_(False)
    out_dir.mkdir(parents=True, exist_ok=True)
    size = int(sam.image_encoder.img_size)
    embed_dim = sam.prompt_encoder.embed_dim
    grid = sam.prompt_encoder.image_embedding_size

    torch_export.to_onnx(sam.image_encoder, (torch.zeros(1, 3, size, size),), out_dir / ENCODER_FILE, ["pixels"],
                         ["image_embedding"], {"pixels": {0: "batch"}, "image_embedding": {0: "batch"}})
    decoder = SamOnnxModel(sam, return_single_mask=True)
    dummy = (torch.randn(1, embed_dim, *grid), torch.randint(0, size, (1, 5, 2), dtype=torch.float),
             torch.randint(0, 4, (1, 5), dtype=torch.float), torch.randn(1, 1, 4 * grid[0], 4 * grid[1]),
             torch.tensor([1], dtype=torch.float), torch.tensor([1500, 2250], dtype=torch.float))
    torch_export.to_onnx(decoder, dummy, out_dir / DECODER_FILE,
                         ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input",
                          "orig_im_size"], ["masks", "iou_predictions", "low_res_masks"],
                         {"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}})
    draft = {
        "task_type": "promptable-segmentation", "model_type": "sam", "name": f"sam-{variant.replace('_', '-')}",
        "input": input_spec(sam), "outputs": ["image_embedding"], "batch": {"max_batch_size": 4},
        "inputs": [{"name": "image", "kind": "image"},
                   {"name": "points", "kind": "points", "required": False, "max_items": 16},
                   {"name": "boxes", "kind": "boxes", "required": False, "max_items": 1},
                   {"name": "mask", "kind": "tensor", "required": False}],
        "options": {"decoder_graph": "decoder", "mask_threshold": float(sam.mask_threshold)},
        "provenance": {"exporter": "services.packaging.sam_export", "architecture": f"segment_anything {variant}"
                       + (f" ({json.dumps(TINY)})" if variant == "vit_tiny" else ""),
                       "segment_anything": getattr(segment_anything, "__version__", "1.0"), "torch": torch.__version__,
                       "weights": checkpoint.name if checkpoint else f"random (seed {seed})",
                       "decoder": "segment_anything.utils.onnx.SamOnnxModel(return_single_mask=True)"},
    }
    torch_export.stamp(out_dir / ENCODER_FILE, draft, {"graphs": {"decoder": DECODER_FILE}, "assets": {}})
    return out_dir / ENCODER_FILE


def main(argv: list[str] | None = None) -> int:
    return torch_export.command(export, argv, "Export a segment-anything model to a fleet export directory.",
                                "variant", "vit_b, vit_l, vit_h or vit_tiny",
                                "Meta's checkpoint .pth (default: random weights)")

if __name__ == "__main__":
    raise SystemExit(main())
