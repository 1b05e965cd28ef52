"""Zero-shot accuracy of the shapes-clip package on held-out scenes, with ONNX Runtime and no torch.

Each held-out scene (test seeds, :data:`services.demo.captions.CLIP_CONFIG`) is embedded by
``image_encoder.onnx`` (pixels prepared by the worker's ``preprocess``); every candidate caption
(the grammar's 34 captions of one to four shapes, :func:`candidate_captions`) is tokenized by the
fleet's ``ClipTokenizer`` and embedded by ``text_encoder.onnx``. top-1: the scene's own caption
scores highest; top-3: it is among the three best.

    python -m services.demo.evaluate_clip [--package models/packages/shapes-clip] [--images 500] [--write]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from services.demo import clip_package as pkg
from services.demo.captions import CLIP_CONFIG, candidate_captions, caption, scene_counts
from services.demo.scenes import TEST_SEEDS, Scene, generate_scene
from services.model_worker.processing.clip_tokenizer import VOCAB_FILE, ClipTokenizer
from services.model_worker.processing.preprocess import preprocess

DEFAULT_IMAGES = 500
_BATCH = 16


class ClipPredictor:
    """The package's two graphs in ONNX Runtime and its tokenizer."""

    def __init__(self, package_dir: Path = pkg.PACKAGE_DIR, threads: int = 1) -> None:
        self.spec = pkg.read_model_json(package_dir)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        self.image = ort.InferenceSession(str(package_dir / pkg.IMAGE_FILE), options, providers=providers)
        self.text = ort.InferenceSession(str(package_dir / pkg.TEXT_FILE), options, providers=providers)
        self.tokenizer = ClipTokenizer(package_dir / VOCAB_FILE, self.spec["options"]["context_length"])
        self.logit_scale = float(self.spec["options"]["logit_scale"])

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        """RGB uint8 images -> N x D unit embeddings."""
        out = []
        for start in range(0, len(images), _BATCH):
            pixels = np.stack([preprocess(im, pkg.IMAGE_INPUT)[0] for im in images[start : start + _BATCH]])
            out.append(self.image.run([pkg.OUTPUT_NAME], {pkg.IMAGE_INPUT_NAME: pixels})[0])
        return np.concatenate(out)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Texts -> N x D unit embeddings."""
        out = []
        for start in range(0, len(texts), _BATCH):
            tokens = self.tokenizer(texts[start : start + _BATCH]).ids
            out.append(self.text.run([pkg.OUTPUT_NAME], {pkg.TEXT_INPUT_NAME: tokens})[0])
        return np.concatenate(out)


def held_out_scenes(count: int, start: int = TEST_SEEDS) -> list[Scene]:
    return [generate_scene(seed, CLIP_CONFIG) for seed in range(start, start + count)]


def zero_shot(predictor: ClipPredictor, scenes: list[Scene], candidates: list[str]) -> dict[str, Any]:
    """top-1 and top-3 of each scene's caption among ``candidates``."""
    truth = np.array([candidates.index(caption(scene_counts(s))) for s in scenes])
    logits = predictor.logit_scale * predictor.embed_images([s.image for s in scenes]) @ predictor.embed_texts(candidates).T
    ranked = np.argsort(-logits, axis=1)
    return {
        "top1": round(float((ranked[:, 0] == truth).mean()), 4),
        "top3": round(float((ranked[:, :3] == truth[:, None]).any(axis=1).mean()), 4),
    }


def evaluate_package(package_dir: Path = pkg.PACKAGE_DIR, images: int = DEFAULT_IMAGES) -> dict[str, Any]:
    candidates = candidate_captions()
    scores = zero_shot(ClipPredictor(package_dir), held_out_scenes(images), candidates)
    return {
        "dataset": f"synthetic held-out, CLEAN_CONFIG seeds {TEST_SEEDS}..{TEST_SEEDS + images - 1}",
        "images": images,
        "candidates": f"all {len(candidates)} captions of 1-4 shapes (counts per class)",
        "zero_shot_top1": scores["top1"],
        "zero_shot_top3": scores["top3"],
        "runtime": f"onnxruntime {ort.__version__}, torch-free tokenizer",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.demo.evaluate_clip", description=__doc__.split("\n")[0])
    parser.add_argument("--package", type=Path, default=pkg.PACKAGE_DIR, help="the shapes-clip package directory")
    parser.add_argument("--images", type=int, default=DEFAULT_IMAGES, help="held-out scenes")
    parser.add_argument("--write", action="store_true", help="store the figures in the package's model.json")
    args = parser.parse_args(argv)
    metrics = evaluate_package(args.package, args.images)
    print(f"{pkg.NAME}: zero-shot top-1 {metrics['zero_shot_top1']:.4f}, top-3 {metrics['zero_shot_top3']:.4f} "
          f"over {metrics['candidates']}, {metrics['images']} held-out scenes")
    if args.write:
        pkg.update_metrics(args.package, metrics)


if __name__ == "__main__":
    main()
