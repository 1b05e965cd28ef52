"""Export an OpenCLIP model to ONNX as a fleet export: image and text towers, tokenizer vocabulary.

Needs the ``reference`` extra (torch, open-clip-torch); the fleet never imports it at serving time.
``open_clip.create_model(NAME, pretrained=None)`` builds the architecture offline (random weights unless
``--checkpoint`` gives a state dict: no hub is reached). The directory written holds:

- ``image_encoder.onnx``: pixels [N, 3, S, S] -> ``embedding`` [N, D] (``encode_image``, not normalised;
  the worker L2-normalises), with the fleet's package draft in its metadata (``fleet.package``);
- ``text_encoder.onnx``: ``tokens`` [N, context_length] int64 -> ``embedding`` [N, D] (``encode_text``);
- ``bpe_simple_vocab_16e6.txt.gz``: the vocabulary the open_clip wheel ships.

``fleet package DIR/image_encoder.onnx`` (or ``fleet package openclip:NAME``) turns it into a package. The
input spec is OpenCLIP's own preprocessing: shortest side resized to the input size (PIL, bicubic, as
torchvision resizes a PIL image) and a centre crop, OpenAI's mean and std.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from services.packaging import torch_export

IMAGE_FILE, TEXT_FILE = "image_encoder.onnx", "text_encoder.onnx"


def input_spec(preprocess_cfg: dict[str, Any], image_size: int) -> dict[str, Any]:
    """OpenCLIP's eval transform (``image_transform(is_train=False)``) as the fleet's input spec."""
    mode = preprocess_cfg.get("resize_mode") or "shortest"
    if mode != "shortest":
        raise ValueError(f"OpenCLIP resize_mode {mode!r}: only 'shortest' (the default) is packaged")
    interpolation = preprocess_cfg.get("interpolation") or "bicubic"
    return {"name": "pixels", "width": image_size, "height": image_size, "resize_mode": "resize-center-crop",
            "interpolation": f"pil-{interpolation}", "color_order": "rgb", "scale": 1.0 / 255.0,
            "mean": list(preprocess_cfg["mean"]), "std": list(preprocess_cfg["std"])}


def build(model_name: str, *, checkpoint: Path | None = None, seed: int = 0) -> Any:
    """The OpenCLIP model, in eval mode: ``checkpoint``'s weights, or random ones drawn after ``manual_seed(seed)``."""
    torch = torch_export.torch_cpu()
    import open_clip  # noqa: PLC0415

    torch.manual_seed(seed)
    model = open_clip.create_model(model_name, pretrained=str(checkpoint) if checkpoint else None)
    return model.eval()


def export(model_name: str, out_dir: Path, *, checkpoint: Path | None = None, seed: int = 0,
           model: Any = None) -> Path:
    """Write the export of ``model`` (default: ``build``'s) into ``out_dir``; returns the image encoder's path."""
    torch = torch_export.torch_cpu()
    import open_clip  # noqa: PLC0415

    model = model if model is not None else build(model_name, checkpoint=checkpoint, seed=seed)
    cfg = dict(model.visual.preprocess_cfg)
    size = cfg["size"] if isinstance(cfg["size"], int) else cfg["size"][0]
    tokenizer = open_clip.get_tokenizer(model_name)
    context_length = int(getattr(tokenizer, "context_length", 77))
    out_dir.mkdir(parents=True, exist_ok=True)

    model.requires_grad_(False)

    class Image(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.clip = model

        def forward(self, pixels: Any) -> Any:
            return self.clip.encode_image(pixels)

    class Text(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.clip = model

        def forward(self, tokens: Any) -> Any:
            return self.clip.encode_text(tokens)

    with torch.no_grad():
        torch_export.to_onnx(Image(), (torch.zeros(1, 3, size, size),), out_dir / IMAGE_FILE, ["pixels"], ["embedding"],
                             {"pixels": {0: "batch"}, "embedding": {0: "batch"}})
        torch_export.to_onnx(Text(), (torch.zeros(2, context_length, dtype=torch.int64),), out_dir / TEXT_FILE,
                             ["tokens"], ["embedding"], {"tokens": {0: "batch"}, "embedding": {0: "batch"}})
    vocab = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    shutil.copyfile(vocab, out_dir / vocab.name)
    draft = {
        "task_type": "embedding", "model_type": "clip", "name": model_name.lower(),
        "input": input_spec(cfg, size), "outputs": ["embedding"], "batch": {"max_batch_size": 16},
        "inputs": [{"name": "image", "kind": "image", "required": False},
                   {"name": "text", "kind": "texts", "required": False, "max_items": 64}],
        "options": {"text_graph": "text_encoder", "text_input": "tokens", "text_output": "embedding",
                    "vocabulary": "vocab", "context_length": context_length,
                    "logit_scale": round(float(model.logit_scale.exp()), 6)},
        "provenance": {"exporter": "services.packaging.openclip_export", "architecture": f"open_clip {model_name}",
                       "open_clip": open_clip.__version__, "torch": torch.__version__,
                       "weights": str(checkpoint.name) if checkpoint else f"random (seed {seed})",
                       "vocab": f"{vocab.name} from the open_clip wheel (OpenAI CLIP, MIT licence)"},
    }
    files = {"graphs": {"text_encoder": TEXT_FILE}, "assets": {"vocab": vocab.name}}
    torch_export.stamp(out_dir / IMAGE_FILE, draft, files)
    return out_dir / IMAGE_FILE


def main(argv: list[str] | None = None) -> int:
    return torch_export.command(export, argv, "Export an OpenCLIP architecture to a fleet export directory.", "model",
                                "an open_clip model name, e.g. ViT-B-32", "a local state dict (default: random weights)")

if __name__ == "__main__":
    raise SystemExit(main())
