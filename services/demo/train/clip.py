"""Train the CLIP-style demo model on captioned synthetic scenes and write the shapes-clip package.

    python -m services.demo.train.clip [--train-images 5000] [--steps 3000] [--minutes 12] [--resume] [--out DIR]

Scenes come from :data:`services.demo.captions.CLIP_CONFIG` (training seeds), prepared with the
worker's own ``preprocess`` and :data:`services.demo.clip_package.IMAGE_INPUT`; captions are
paraphrases of each scene's counts (:func:`services.demo.captions.training_caption`), tokenized by
the fleet's torch-free ``ClipTokenizer``. The image encoder's detector is frozen, so its features
are computed once per scene (and cached in ``models/.cache``); training fits the image head, the
text encoder and the logit scale. Then both encoders are exported to ONNX, the vocabulary copied, ``model.json``
written and the package evaluated with ONNX Runtime (``services.demo.evaluate_clip``).
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fleet.paths import MODELS_DIR
from services.demo import clip_package as pkg
from services.demo.captions import CLIP_CONFIG, Counts, candidate_counts, scene_counts, training_caption
from services.demo.evaluate_clip import DEFAULT_IMAGES, evaluate_package
from services.demo.scenes import TRAIN_SEEDS, generate_scene
from services.demo.package import PACKAGES_DIR
from services.demo.scenes import CLASS_NAMES
from services.demo.train.clip_model import ClipModel, ImageEncoder, clip_loss
from services.demo.train.from_onnx import load_detector
from services.demo.train.models import DETECTION_INPUT
from services.model_worker.artifacts import sha256_file
from services.demo.train.export import OPSET, declare_output_shapes
from services.model_worker.processing.clip_tokenizer import VOCAB_FILE, ClipTokenizer
from services.model_worker.processing.preprocess import preprocess

SEED = 0
BATCH = 64
CACHE_DIR = MODELS_DIR / ".cache"  # git-ignored: the generated training set and the last torch weights
LR = 2e-3
WEIGHT_DECAY = 0.05
WARMUP = 100


def scene_sample(seed: int) -> tuple[np.ndarray, Counts]:
    """One training scene: its input tensor (letterboxed, as the worker prepares it) and its counts."""
    scene = generate_scene(seed, CLIP_CONFIG)
    return preprocess(scene.image, pkg.IMAGE_INPUT)[0], scene_counts(scene)


def build_features(encoder: ImageEncoder, count: int, log, workers: int = 2) -> tuple[Tensor, list[Counts]]:  # type: ignore[no-untyped-def]
    """The frozen detector's features of the first ``count`` training scenes, cached once computed."""
    cache = CACHE_DIR / f"clip-features-{count}.pt"
    if cache.exists():
        features, counts = torch.load(cache)
        return features, [tuple(c) for c in counts]
    seeds = range(TRAIN_SEEDS, TRAIN_SEEDS + count)
    features, counts, pending = [], [], []
    with ProcessPoolExecutor(workers) as pool, torch.no_grad():
        for pixels, scene_count in pool.map(scene_sample, seeds, chunksize=16):
            pending.append(pixels)
            counts.append(scene_count)
            if len(pending) == 64 or len(counts) == count:
                features.append(encoder.features(torch.from_numpy(np.stack(pending))))
                pending = []
                if len(counts) % 1024 == 0:
                    log(f"features of {len(counts)} scenes")
    result = torch.cat(features)
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save((result, counts), cache)
    return result, counts


class CaptionTokens:
    """Training captions -> token ids, remembered per distinct string."""

    def __init__(self, tokenizer: ClipTokenizer, rng: random.Random) -> None:
        self.tokenizer = tokenizer
        self.rng = rng
        self._ids: dict[str, np.ndarray] = {}

    def known_ids(self) -> list[int]:
        """Every id a training caption can produce (each paraphrase of every candidate)."""
        ids: set[int] = {self.tokenizer.start_id, self.tokenizer.end_id}
        probe = random.Random(0)
        for counts in candidate_counts():
            for _ in range(40):
                ids.update(self.tokenizer.encode(training_caption(counts, probe)))
        return sorted(ids)

    def batch(self, counts: list[Counts]) -> tuple[Tensor, Tensor]:
        """Token ids of the distinct captions of a batch and, per item, the row of its caption."""
        texts = [training_caption(c, self.rng) for c in counts]
        distinct = sorted(set(texts))
        for text in distinct:
            if text not in self._ids:
                self._ids[text] = self.tokenizer(text).ids[0]
        rows = {text: i for i, text in enumerate(distinct)}
        tokens = torch.from_numpy(np.stack([self._ids[t] for t in distinct]))
        return tokens, torch.tensor([rows[t] for t in texts])


def train(model: ClipModel, features: Tensor, counts: list[Counts], captions: CaptionTokens,
          steps: int, seconds: float, log) -> int:  # type: ignore[no-untyped-def]
    """AdamW, warm-up then cosine decay over ``steps`` or ``seconds``, whichever runs out first
    (the schedule follows the further of the two, so a slow machine still ends at a low rate)."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]  # not the frozen detector
    decay = [p for n, p in trainable if p.ndim >= 2 and "position" not in n]
    other = [p for n, p in trainable if not (p.ndim >= 2 and "position" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                                   {"params": other, "weight_decay": 0.0}], lr=LR)
    generator = torch.Generator().manual_seed(SEED)
    keys = torch.tensor([hash(c) for c in counts])
    model.train()
    started = time.monotonic()
    step, running = 0, 0.0
    while (progress := max(step / steps, (time.monotonic() - started) / seconds)) < 1.0:
        for group in optimizer.param_groups:
            group["lr"] = LR * min(1.0, (step + 1) / WARMUP) * 0.5 * (1 + math.cos(math.pi * progress))
        index = torch.randint(len(features), (BATCH,), generator=generator)
        tokens, rows = captions.batch([counts[i] for i in index.tolist()])
        same = keys[index][:, None] == keys[index][None, :]
        images = F.normalize(model.image.head(features[index]), dim=-1)
        loss = clip_loss(images, model.text(tokens)[rows], model.logit_scale(), same)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
        if step % 100 == 0:
            log(f"step {step} loss {running:.3f} logit scale {model.logit_scale().item():.1f} lr {optimizer.param_groups[0]['lr']:.2e}")
    return step


def export(module: nn.Module, dummy: Tensor, path: Path, input_name: str, dim: int) -> None:
    """ONNX (legacy exporter, opset 17) with a dynamic batch dimension, checked."""
    module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (dummy,), str(path), input_names=[input_name], output_names=[pkg.OUTPUT_NAME],
                          dynamic_axes={input_name: {0: "batch"}, pkg.OUTPUT_NAME: {0: "batch"}},
                          opset_version=OPSET, dynamo=False)
    model = onnx.load(str(path))
    declare_output_shapes(model, [(dim,)])
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = module(dummy).numpy()
    got = session.run([pkg.OUTPUT_NAME], {input_name: dummy.numpy()})[0]
    if not np.allclose(got, expected, atol=1e-4):
        raise RuntimeError(f"{path.name}: ONNX Runtime differs from torch by {np.abs(got - expected).max():.2e}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.demo.train.clip", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=pkg.PACKAGE_DIR, help="package directory to write")
    parser.add_argument("--vocab", type=Path, default=pkg.PACKAGE_DIR / VOCAB_FILE,
                        help="CLIP BPE vocabulary (open_clip's bpe_simple_vocab_16e6.txt.gz)")
    parser.add_argument("--detector", type=Path, default=PACKAGES_DIR / "shapes-det" / "model.onnx",
                        help="the trained detector whose layers the image encoder reuses (frozen)")
    parser.add_argument("--train-images", type=int, default=5000, help="training scenes")
    parser.add_argument("--steps", type=int, default=3000, help=f"optimizer steps of {BATCH} images")
    parser.add_argument("--minutes", type=float, default=12.0, help="train at most this long")
    parser.add_argument("--eval-images", type=int, default=DEFAULT_IMAGES, help="held-out scenes to evaluate")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--resume", action="store_true", help="start from the last run's torch weights (in the cache)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    started = time.monotonic()
    log = lambda message: print(f"[{time.monotonic() - started:6.0f}s] {message}", flush=True)  # noqa: E731
    tokenizer = ClipTokenizer(args.vocab, pkg.CONTEXT_LENGTH)
    captions = CaptionTokens(tokenizer, random.Random(SEED))
    detector = load_detector(args.detector, len(CLASS_NAMES), DETECTION_INPUT)
    model = ClipModel(detector, pkg.EMBEDDING_DIM, captions.known_ids(), pkg.CONTEXT_LENGTH)
    features, counts = build_features(model.image, args.train_images, log)
    log(f"{len(features)} training scenes")
    checkpoint = CACHE_DIR / "shapes-clip.pt"
    previous = torch.load(checkpoint) if args.resume else {"steps": 0, "seconds": 0.0}
    if args.resume:
        model.load_state_dict(previous["model"])
    train_started = time.monotonic()
    steps = train(model, features, counts, captions, args.steps, 60 * args.minutes, log)
    train_seconds = time.monotonic() - train_started
    steps, train_seconds = steps + previous["steps"], train_seconds + previous["seconds"]
    torch.save({"model": model.state_dict(), "steps": steps, "seconds": train_seconds}, checkpoint)

    args.out.mkdir(parents=True, exist_ok=True)
    export(model.image, torch.zeros(2, 3, pkg.INPUT_SIZE, pkg.INPUT_SIZE), args.out / pkg.IMAGE_FILE,
           pkg.IMAGE_INPUT_NAME, pkg.EMBEDDING_DIM)
    export(model.text, torch.from_numpy(tokenizer(["one circle", "two triangles"]).ids), args.out / pkg.TEXT_FILE,
           pkg.TEXT_INPUT_NAME, pkg.EMBEDDING_DIM)
    if args.vocab.resolve() != (args.out / VOCAB_FILE).resolve():
        shutil.copyfile(args.vocab, args.out / VOCAB_FILE)
    provenance = {
        "trainer": "services.demo.train.clip", "seed": SEED, "train_images": len(features),
        "image_backbone": f"{args.detector.parent.name} ({args.detector.name}, sha256 {sha256_file(args.detector)[:12]}), frozen",
        "train_seeds": f"{TRAIN_SEEDS}..{TRAIN_SEEDS + len(features) - 1}", "scenes": "CLEAN_CONFIG (1-4 whole shapes)",
        "steps": steps, "resumed": bool(args.resume), "batch": BATCH, "loss": "symmetric InfoNCE, learned logit scale, same-caption positives",
        "torch": torch.__version__, "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "train_seconds": round(train_seconds, 1),
        "vocab": "bpe_simple_vocab_16e6.txt.gz from open_clip (OpenAI CLIP), MIT licence",
    }
    pkg.write_model_json(args.out, round(float(model.logit_scale()), 4), provenance)
    log(f"wrote {args.out} after {steps} steps")
    if args.eval_images:
        metrics = evaluate_package(args.out, args.eval_images)
        pkg.update_metrics(args.out, metrics)
        log(f"metrics {metrics}")


if __name__ == "__main__":
    main()
