"""Real architectures, exact numerics: OpenCLIP and segment-anything exports served by the fleet answer what the
torch models answer.

The reference side runs in a venv of its own with the ``reference`` extra (torch CPU, open-clip-torch,
segment-anything; made once under ``.cache/client-venvs/``, from scratch on a clean checkout):
``reference_side.py`` builds OpenCLIP ViT-B-32 and SAM (``vit_tiny``: SAM's own builder with a smaller image
encoder, see services/packaging/sam_export.py) with random weights, exports those very models with the fleet's
exporters and writes their torch outputs. This side packages the exports with ``fleet package`` and asks a real
worker over gRPC (ONNX Runtime, the worker's decode and preprocessing, the tasks' code), then compares.

Tolerances (docs/model-package.md): embeddings cosine >= 0.9999 and max |diff| <= 1e-5 (unit vectors; OpenCV's
bicubic instead of PIL's already misses that by 50x); SAM masks IoU >= 0.999 at the original resolution and the
predicted IoU within 1e-5 (OpenCV's bilinear instead of PIL's gives 0.9926 and 1e-4; padding with a pixel value
instead of 0 after normalisation, 0.56). Each test prints what it measured (``-s``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fleet.internal.v1 import worker_pb2
from fleet.v1 import inference_pb2
from tests.client_envs import client_venv
from tests.model_worker.test_service import descriptor, start_worker

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CLIP_MODEL, SAM_VARIANT = "ViT-B-32", "vit_tiny"
TEXTS = ["a photo of a red circle", "two blue squares and a green triangle", "",
         " ".join(["a very long caption that goes on"] * 20)]  # the last one is over 77 tokens: cut as open_clip cuts
# Points [x, y] or [x, y, negative]; boxes xyxy in original pixels.
# "mask_from": i also sends prompt i's low-res mask logits as the previous mask (input "mask", SAM's mask_input).
PROMPTS = [{"points": [[210, 150]]}, {"box": [60, 40, 300, 260]}, {"points": [[450, 300], [120, 80, True]]},
           {"points": [[330, 200]], "box": [250, 120, 520, 380]}, {"points": [[210, 150], [260, 90]], "mask_from": 0}]
COSINE_MIN, ABS_MAX = 0.9999, 1e-5
MASK_IOU_MIN, SCORE_TOL = 0.999, 1e-5


def scene(width: int, height: int, seed: int) -> np.ndarray:
    """A smooth gradient with filled shapes and some noise: resampling differences would show."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack([xx * 255 // max(1, width - 1), yy * 255 // max(1, height - 1),
                      (xx + yy) * 127 // max(1, width + height)], -1).astype(np.uint8)
    for _ in range(6):
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        cx, cy, r = int(rng.integers(0, width)), int(rng.integers(0, height)), int(rng.integers(15, 80))
        if rng.random() < 0.5:
            cv2.circle(image, (cx, cy), r, colour, -1)
        else:
            cv2.rectangle(image, (cx - r, cy - r), (cx + r, cy + r), colour, -1)
    noise = rng.integers(-12, 13, image.shape)
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def save_png(path: Path, pixels: np.ndarray) -> bytes:
    Image.fromarray(pixels).save(path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The exports and the torch models' outputs (the reference venv made first when missing); the exports
    (ViT-B-32: 600 MB) are removed afterwards."""
    python = client_venv("reference", ["torch==2.13.0"], extras="reference")
    work = tmp_path_factory.mktemp("reference")
    for name, (w, h, seed) in {"wide.png": (300, 200, 1), "tall.png": (181, 263, 2), "sam.png": (640, 427, 3)}.items():
        save_png(work / name, scene(w, h, seed))
    cases = {"clip": {"model": CLIP_MODEL, "images": ["wide.png", "tall.png"], "texts": TEXTS},
             "sam": {"variant": SAM_VARIANT, "image": "sam.png", "prompts": PROMPTS}}
    (work / "cases.json").write_text(json.dumps(cases))
    done = subprocess.run([str(python), str(Path(__file__).with_name("reference_side.py")), str(work)],
                          capture_output=True, text=True, timeout=900, cwd=work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    yield work
    for export in ("clip-export", "sam-export"):
        shutil.rmtree(work / export, ignore_errors=True)


def fleet_package(export: Path, out: Path) -> str:
    """`fleet package EXPORT --out OUT` as a user runs it (this checkout's code, the test's venv)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "fleet.cli.main", "package", str(export), "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def decode_rle(rle: inference_pb2.RleMask) -> np.ndarray:
    """COCO's uncompressed RLE (column-major runs, zeros first) -> H x W bool."""
    flat = np.repeat(np.arange(len(rle.counts)) % 2 == 1, list(rle.counts))
    return flat.reshape(rle.width, rle.height).T


async def test_openclip_vit_b_32_embeddings_equal_open_clip(reference: Path, tmp_path: Path, redis_url: str,
                                                             namespace: str) -> None:
    printed = fleet_package(reference / "clip-export" / "image_encoder.onnx", tmp_path / "clip")
    assert "embedding, model_type clip" in printed and "resize-center-crop" in printed, printed
    expected = np.load(reference / "clip-ref.npz")
    harness = await start_worker(tmp_path, redis_url, namespace)
    try:
        model = descriptor(tmp_path / "clip", "openclip-vit-b-32/1")
        worst_cos, worst_abs = 1.0, 0.0
        for i, name in enumerate(["wide.png", "tall.png"]):
            request = inference_pb2.InferRequest(
                model_id=model.model_id, image=inference_pb2.Image(encoded=(reference / name).read_bytes()),
                inputs={"text": inference_pb2.InputValue(texts=inference_pb2.Texts(values=TEXTS))})
            reply = await harness.stub.Infer(worker_pb2.ModelWorkerServiceInferRequest(model=model, request=request))
            embeddings = reply.response.embedding.embeddings
            assert [e.source for e in embeddings] == ["image"] + ["text"] * len(TEXTS)
            got_image = np.array(embeddings[0].values, np.float32)
            got_texts = np.array([e.values for e in embeddings[1:]], np.float32)
            assert [e.truncated for e in embeddings[1:]] == [False, False, False, True]
            for got, want in [(got_image, expected["image"][i]), *zip(got_texts, expected["text"])]:
                assert got.shape == want.shape == (512,)
                worst_cos, worst_abs = min(worst_cos, float(got @ want)), max(worst_abs, float(np.abs(got - want).max()))
                assert float(got @ want) >= COSINE_MIN, (name, float(got @ want))
                assert float(np.abs(got - want).max()) <= ABS_MAX, (name, float(np.abs(got - want).max()))
        print(f"\nOpenCLIP {CLIP_MODEL}: worst cosine {worst_cos:.8f}, worst max |diff| {worst_abs:.2e}")
    finally:
        await harness.runner.stop()
        for big in (tmp_path / "clip", harness.cache_dir):  # the package and the worker's copy of it
            shutil.rmtree(big, ignore_errors=True)


async def test_segment_anything_masks_equal_the_sam_predictor(reference: Path, tmp_path: Path, redis_url: str,
                                                              namespace: str) -> None:
    printed = fleet_package(reference / "sam-export" / "encoder.onnx", tmp_path / "sam")
    assert "promptable-segmentation, model_type sam" in printed, printed
    expected = np.load(reference / "sam-ref.npz")
    image = (reference / "sam.png").read_bytes()
    harness = await start_worker(tmp_path, redis_url, namespace)
    try:
        model = descriptor(tmp_path / "sam", "sam-vit-tiny/1")
        worst_iou, worst_score = 1.0, 0.0
        for i, prompt in enumerate(PROMPTS):
            inputs = {}
            if prompt.get("points"):
                inputs["points"] = inference_pb2.InputValue(points=inference_pb2.PointPrompts(points=[
                    inference_pb2.PointPrompt(x=p[0], y=p[1], negative=len(p) > 2 and p[2]) for p in prompt["points"]]))
            if prompt.get("box"):
                x0, y0, x1, y1 = prompt["box"]
                inputs["boxes"] = inference_pb2.InputValue(boxes=inference_pb2.BoxPrompts(boxes=[
                    inference_pb2.BoxPrompt(x=(x0 + x1) / 2, y=(y0 + y1) / 2, width=x1 - x0, height=y1 - y0)]))
            if "mask_from" in prompt:
                previous = expected["low_res"][prompt["mask_from"]].astype("<f4")
                inputs["mask"] = inference_pb2.InputValue(tensor=inference_pb2.Tensor(
                    datatype="FP32", shape=[1, *previous.shape], data=previous.tobytes()))
            request = inference_pb2.InferRequest(
                model_id=model.model_id, image=inference_pb2.Image(encoded=image), inputs=inputs,
                parameters=inference_pb2.InferenceParameters(mask_format=inference_pb2.MASK_FORMAT_RLE))
            reply = await harness.stub.Infer(worker_pb2.ModelWorkerServiceInferRequest(model=model, request=request))
            result = reply.response.promptable_segmentation
            assert result.embedding_cached == (i > 0)  # one encoder run for the image, every prompt after it cached
            want = expected["logits"][i] > 0.0
            assert 0.001 < want.mean() < 0.999, f"prompt {i}: the reference mask is trivial; choose another prompt"
            (masks,) = result.prompts
            assert len(masks.masks) == 1  # SamOnnxModel(return_single_mask=True): the one mask the predictor picks
            got = decode_rle(masks.masks[0].rle)
            assert got.shape == want.shape == (427, 640)
            iou = (got & want).sum() / (got | want).sum()
            score_diff = abs(masks.masks[0].detection.confidence - float(expected["scores"][i]))
            worst_iou, worst_score = min(worst_iou, float(iou)), max(worst_score, score_diff)
            assert iou >= MASK_IOU_MIN, (i, float(iou))
            assert score_diff <= SCORE_TOL, (i, score_diff)
        print(f"\nSAM {SAM_VARIANT}: worst mask IoU {worst_iou:.5f}, worst |score diff| {worst_score:.2e}")
    finally:
        await harness.runner.stop()
