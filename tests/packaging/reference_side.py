"""The reference side of tests/packaging/test_reference_equality.py, run in a venv with the ``reference`` extra.

``python reference_side.py WORK``: reads WORK/cases.json (images, texts, prompts), builds each reference
model once (random weights, seed 0), exports that very model with the fleet's exporters (WORK/clip-export,
WORK/sam-export) and writes what the torch model answers (WORK/clip-ref.npz, WORK/sam-ref.npz):

- OpenCLIP: ``encode_image`` of open_clip's own eval transform of each image, ``encode_text`` of its own
  tokenizer's ids, both L2-normalised;
- SAM: ``SamPredictor.set_image`` then ``predict`` per prompt, multimask or not as ``SamOnnxModel``'s
  ``return_single_mask`` chooses (one point or a box alone: the best of the three; more: the single mask),
  the mask's logits at the original size, its predicted IoU and its low-resolution logits (a prompt with
  ``mask_from: i`` also gives prompt i's low-res logits as ``mask_input``, SAM's refinement step).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from services.packaging import openclip_export, sam_export, torch_export


def clip_reference(work: Path, case: dict) -> dict:
    torch = torch_export.torch_cpu()
    import open_clip  # noqa: PLC0415

    t0 = time.perf_counter()
    model = openclip_export.build(case["model"], seed=0)
    openclip_export.export(case["model"], work / "clip-export", model=model)
    exported = time.perf_counter() - t0
    cfg = model.visual.preprocess_cfg
    preprocess = open_clip.image_transform(model.visual.image_size, is_train=False, mean=cfg["mean"], std=cfg["std"],
                                           resize_mode=cfg["resize_mode"], interpolation=cfg["interpolation"],
                                           fill_color=cfg["fill_color"])
    tokenizer = open_clip.get_tokenizer(case["model"])
    with torch.no_grad():
        pixels = torch.stack([preprocess(Image.open(work / name).convert("RGB")) for name in case["images"]])
        images = torch.nn.functional.normalize(model.encode_image(pixels), dim=-1)
        texts = torch.nn.functional.normalize(model.encode_text(tokenizer(case["texts"])), dim=-1)
    np.savez(work / "clip-ref.npz", image=images.numpy(), text=texts.numpy())
    return {"clip_export_s": round(exported, 1)}


def sam_reference(work: Path, case: dict) -> dict:
    torch = torch_export.torch_cpu()
    from segment_anything import SamPredictor  # noqa: PLC0415

    t0 = time.perf_counter()
    torch.manual_seed(0)
    sam = sam_export.build(case["variant"], None).eval()
    sam_export.export(case["variant"], work / "sam-export", sam=sam)
    exported = time.perf_counter() - t0
    predictor = SamPredictor(sam)
    predictor.set_image(np.asarray(Image.open(work / case["image"]).convert("RGB")))
    logits, scores, low_res = [], [], []
    for prompt in case["prompts"]:
        points = prompt.get("points") or []
        box = prompt.get("box")
        previous = low_res[prompt["mask_from"]][None] if "mask_from" in prompt else None  # [1, 256, 256]
        multimask = len(points) + (2 if box else 1) <= 2  # SamOnnxModel.select_masks, padding point counted
        masks, iou, low = predictor.predict(
            point_coords=np.array([p[:2] for p in points], np.float32) if points else None,
            point_labels=np.array([0 if len(p) > 2 and p[2] else 1 for p in points], np.int64) if points else None,
            box=np.array(box, np.float32) if box else None, mask_input=previous, multimask_output=multimask,
            return_logits=True)
        best = int(np.argmax(iou))
        logits.append(masks[best].astype(np.float32))
        scores.append(float(iou[best]))
        low_res.append(low[best].astype(np.float32))
    np.savez(work / "sam-ref.npz", logits=np.stack(logits), scores=np.array(scores, np.float32),
             low_res=np.stack(low_res))
    return {"sam_export_s": round(exported, 1)}


def main() -> None:
    work = Path(sys.argv[1])
    cases = json.loads((work / "cases.json").read_text())
    out: dict = {}
    if "clip" in cases:
        out.update(clip_reference(work, cases["clip"]))
    if "sam" in cases:
        out.update(sam_reference(work, cases["sam"]))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
