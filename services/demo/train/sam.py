"""Train the promptable segmenter and write ``models/packages/shapes-sam``.

``python -m services.demo.train.sam [--minutes M] [--train-images N] [--checkpoint F] [--resume F]``

The encoder starts from the committed ``shapes-det`` (its backbone and pyramid; their BatchNorms
stay frozen, as when fine-tuning from an ONNX export); the head and the decoder start fresh. Each
step encodes a batch of scenes once and decodes several random prompts per scene (SAM's recipe);
the loss is BCE + Dice on the mask upsampled to half the input size, plus the squared error of the
predicted IoU. Then both graphs are exported, the package written and evaluated (ONNX Runtime,
``services.demo.evaluate_sam``). The committed package: a 19-minute run, then 16 minutes resumed
from its weights with ``--lr-scale 0.5 --seed 1 --train-images 2000``.
"""

from __future__ import annotations

import argparse
import math
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from services.demo.package import PACKAGES_DIR
from services.demo.evaluate_sam import DEFAULT_IMAGES, evaluate_sam
from services.demo.sam_package import SAM_PACKAGE, update_sam_metrics, write_sam_package
from services.demo.scenes import CLASS_NAMES
from services.demo.train.from_onnx import load_detector
from services.demo.train.models import DETECTION_INPUT
from services.demo.train.sam_data import TARGET, SamData, build_sam_data, sample_prompt
from services.demo.train.sam_export import export_sam
from services.demo.train.sam_model import SamDecoder, SamEncoder

IMAGES_PER_STEP = 6
PROMPTS_PER_IMAGE = 4


def _pixels(images: np.ndarray) -> Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0  # scale 1/255, mean 0, std 1


def _batch(data: SamData, indices: np.ndarray, rng: np.random.Generator) -> dict[str, Tensor]:
    owners, coords, labels, mask_inputs, has_mask, targets = [], [], [], [], [], []
    for slot, scene in enumerate(indices):
        masks, boxes = data.masks[scene], data.boxes[scene]
        valid = data.valid[scene]
        for _ in range(PROMPTS_PER_IMAGE):
            k = int(rng.integers(len(masks)))
            prompt = sample_prompt(masks, boxes[k], k, valid, rng)
            owners.append(slot)
            coords.append(prompt.coords)
            labels.append(prompt.labels)
            mask_inputs.append(prompt.mask_input)
            has_mask.append(prompt.has_mask)
            targets.append(masks[k].astype(np.float32))
    return {
        "pixels": _pixels(data.images[indices]),
        "owners": torch.as_tensor(owners),
        "coords": torch.from_numpy(np.stack(coords)),
        "labels": torch.from_numpy(np.stack(labels)),
        "mask_input": torch.from_numpy(np.stack(mask_inputs))[:, None],
        "has_mask": torch.tensor(has_mask, dtype=torch.float32)[:, None],
        "targets": torch.from_numpy(np.stack(targets))[:, None],
    }


def _loss(logits: Tensor, iou_pred: Tensor, targets: Tensor) -> tuple[Tensor, dict[str, float]]:
    up = F.interpolate(logits, size=(TARGET, TARGET), mode="bilinear", align_corners=False)
    bce = F.binary_cross_entropy_with_logits(up, targets)
    prob = up.sigmoid().flatten(1)
    flat = targets.flatten(1)
    dice = 1 - (2 * (prob * flat).sum(1) + 1) / (prob.sum(1) + flat.sum(1) + 1)
    with torch.no_grad():
        pred = up.flatten(1) > 0
        truth = flat > 0.5
        iou = (pred & truth).sum(1).float() / (pred | truth).sum(1).clamp(min=1).float()
    iou_loss = F.mse_loss(iou_pred[:, 0], iou)
    total = bce + dice.mean() + iou_loss
    return total, {"bce": bce.item(), "dice": dice.mean().item(), "iou": iou.mean().item(), "iou_mse": iou_loss.item()}


def train(encoder: SamEncoder, decoder: SamDecoder, data: SamData, seconds: float, seed: int, log,
          lr_scale: float = 1.0) -> int:
    """Train for ``seconds`` of wall time (the learning rate follows the elapsed fraction: warm-up,
    then cosine decay); returns the number of steps taken."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    pretrained = [p for m in encoder.pretrained() for p in m.parameters()]
    ids = {id(p) for p in pretrained}
    fresh = [p for p in [*encoder.parameters(), *decoder.parameters()] if id(p) not in ids]
    optimizer = torch.optim.AdamW([{"params": pretrained, "lr": 5e-4 * lr_scale},
                                   {"params": fresh, "lr": 2e-3 * lr_scale}],
                                  weight_decay=1e-4)
    warmup = 30
    base = [group["lr"] for group in optimizer.param_groups]
    encoder.train()
    decoder.train()
    for module in encoder.pretrained():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
    started = time.monotonic()
    totals: dict[str, float] = {}
    step = 0
    while (elapsed := time.monotonic() - started) < seconds:
        cosine = 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * elapsed / seconds))
        factor = (step + 1) / warmup if step < warmup else cosine
        for group, lr in zip(optimizer.param_groups, base):
            group["lr"] = lr * factor
        batch = _batch(data, rng.choice(len(data.images), IMAGES_PER_STEP, replace=False), rng)
        embedding = encoder(batch["pixels"])[batch["owners"]]
        logits, iou_pred = decoder(embedding, batch["coords"], batch["labels"], batch["mask_input"], batch["has_mask"])
        loss, parts = _loss(logits, iou_pred, batch["targets"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        for key, value in parts.items():
            totals[key] = totals.get(key, 0.0) + value
        if step % 25 == 0:
            means = " ".join(f"{k} {v / 25:.3f}" for k, v in totals.items())
            log(f"step {step} {means} ({time.monotonic() - started:.0f}s)")
            totals = {}
    return step


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.demo.train.sam", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=18.0, help="training wall time")
    parser.add_argument("--train-images", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr-scale", type=float, default=1.0,
                        help="multiply the peak learning rates (a resumed run: 0.5)")
    parser.add_argument("--out", type=Path, default=PACKAGES_DIR / SAM_PACKAGE)
    parser.add_argument("--eval-images", type=int, default=DEFAULT_IMAGES, help="held-out scenes (0: skip)")
    parser.add_argument("--checkpoint", type=Path, help="also save the torch weights here")
    parser.add_argument("--resume", type=Path, help="start from these saved torch weights (a --checkpoint file)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    log = lambda m: print(m, flush=True)  # noqa: E731
    started = time.monotonic()
    data = build_sam_data(args.train_images)
    log(f"built {len(data.images)} scenes in {time.monotonic() - started:.0f}s")
    detector = load_detector(PACKAGES_DIR / "shapes-det" / "model.onnx", len(CLASS_NAMES), DETECTION_INPUT)
    encoder, decoder = SamEncoder(detector), SamDecoder()
    if args.resume:
        state = torch.load(args.resume)
        encoder.load_state_dict(state["encoder"])
        decoder.load_state_dict(state["decoder"])
    steps = train(encoder, decoder, data, args.minutes * 60, args.seed, log, args.lr_scale)
    seconds = time.monotonic() - started
    if args.checkpoint:
        torch.save({"encoder": encoder.state_dict(), "decoder": decoder.state_dict()}, args.checkpoint)
    export_sam(encoder, decoder, args.out)
    provenance = {
        "trainer": "services.demo.train.sam", "seed": args.seed, "steps": steps, "train_minutes": args.minutes,
        "lr_scale": args.lr_scale,
        "images_per_step": IMAGES_PER_STEP, "prompts_per_image": PROMPTS_PER_IMAGE,
        "train_images": args.train_images, "torch": torch.__version__.split("+")[0],
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "train_seconds": round(seconds, 1),
        "initialized_from": f"resumed from {args.resume.name}" if args.resume else "shapes-det (backbone and pyramid)",
    }
    write_sam_package(args.out, provenance)
    if args.eval_images:
        metrics = evaluate_sam(args.out, args.eval_images)
        update_sam_metrics(args.out, metrics)
        log(str(metrics))
    log(f"wrote {args.out} ({time.monotonic() - started:.0f}s)")


if __name__ == "__main__":
    main()
