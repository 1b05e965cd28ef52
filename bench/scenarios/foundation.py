"""Scenario: the foundation models (issue 26), in a fleet of their own with three workers.

- Image embeddings (shapes-clip): the fleet (fleet.v1 ``Infer``) against in-process ONNX Runtime doing the same
  decode + pre-process + image-encoder run + normalisation (the worker's own one-thread path), c=1 and c=16.
- Promptable segmentation (shapes-sam): p50 of a prompt on an image whose embedding the worker holds (cached)
  against one on an image it never saw (uncached: the same pixels with a unique trailer, so its content hash is
  new); and the share of cache hits under a mix (several prompts per image, in random order, 8 callers, the
  model copied to every worker: what affinity routing keeps together).
- OCR (pp-ocr): images/s on rendered pages of 1, 4 and 8 lines, and the time of each stage in-process
  (decode, detection, angle classification, recognition).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import grpc
import numpy as np

from bench.clients import TIMEOUT_S, aio_channel
from bench.config import BenchConfig
from bench.drivers import Run, run_async, run_threads, summarize
from bench.environment import WORKSPACE, BenchEnv, fleet_pids, write_catalog
from bench.processes import CpuMeter
from bench.stats import Window
from fleet.paths import MODELS_DIR
from fleet.v1 import gateway_pb2, gateway_pb2_grpc, inference_pb2
from services.cache.embedded import delete_namespace
from services.common.model_spec import ModelSpec
from services.local.processes import LocalFleet

PACKAGES = {"clip/1": "shapes-clip", "sam/1": "shapes-sam", "ocr/1": "pp-ocr"}
WORKERS = 3
PROMPTS_PER_IMAGE = 4
OCR_LINES = (1, 4, 8)


POINT_WARMUP_S, POINT_MEASURE_S = 1.0, 3.0  # shorter than the suite's windows: nine points in one minute


def planned_s(cfg: BenchConfig) -> float:
    points = 2 * 2 + 2 + len(OCR_LINES)
    return points * (min(cfg.warmup_s, POINT_WARMUP_S) + min(cfg.measure_s, POINT_MEASURE_S)) + 20.0


@contextlib.contextmanager
def _fleet(env: BenchEnv) -> Iterator[LocalFleet]:
    namespace = f"{env.namespace}-foundation"
    entries = [{"id": i, "workspace": WORKSPACE, "package": str(MODELS_DIR / "packages" / p)}
               for i, p in PACKAGES.items()]
    catalog = write_catalog(env.state_dir / "foundation.yaml", env.api_key, entries)
    fleet = LocalFleet(env.redis(), catalog, workers=WORKERS, namespace=namespace,
                       state_dir=env.state_dir / "foundation", env={"FLEET_GATEWAY_MAX_COPIES": str(WORKERS), **env.env},
                       worker_env={"FLEET_WORKER_LOG_LEVEL": "WARNING", **env.worker_env})
    try:
        yield fleet.start()
    finally:
        fleet.stop()
        delete_namespace(env.redis_url, namespace)


def _window(cfg: BenchConfig) -> Window:
    return Window(min(cfg.warmup_s, POINT_WARMUP_S), min(cfg.measure_s, POINT_MEASURE_S), cfg.min_samples)


def run(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    with _fleet(env) as fleet:
        pids = fleet_pids(fleet, env.redis_url)
        out = asyncio.run(_fleet_points(cfg, env, fleet, pids, images))
    out["embedding_in_process"] = _in_process_embeddings(cfg, images)
    out["ocr_stages"] = _ocr_stages(cfg)
    return out


async def _fleet_points(cfg: BenchConfig, env: BenchEnv, fleet: LocalFleet, pids: dict[str, int],
                        images: list[bytes]) -> dict:
    metadata = (("authorization", f"Bearer {env.api_key}"),)
    channel = aio_channel(fleet.gateway.address)
    stub = gateway_pb2_grpc.GatewayServiceStub(channel)
    try:
        for model in PACKAGES:  # loaded (and the segmenter copied to every worker) before any window opens
            await stub.AddModel(gateway_pb2.AddModelRequest(model_id=model, copies=WORKERS if model == "sam/1" else 0),
                                metadata=metadata, timeout=120)

        async def infer(request: inference_pb2.InferRequest) -> inference_pb2.InferResponse:
            return await stub.Infer(request, metadata=metadata, timeout=TIMEOUT_S)

        embedding = []
        for concurrency in (1, 16):
            async def embed(i: int) -> dict[str, float]:
                r = await infer(inference_pb2.InferRequest(model_id="clip/1", image=inference_pb2.Image(
                    encoded=images[i % len(images)])))
                return {"gateway_ms": r.timings.gateway_ms, "worker_ms": r.timings.worker_ms}
            result = await run_async(embed, concurrency, Run(_window(cfg), CpuMeter(pids)))
            embedding.append(summarize(result, setup="fleet image embedding", concurrency=concurrency))
        return {"embedding_fleet": embedding, "segment": await _segment_points(cfg, infer, pids, images),
                "ocr": await _ocr_points(cfg, infer, pids)}
    finally:
        await channel.close()


def _prompt(image: bytes, seed: int) -> inference_pb2.InferRequest:
    """A positive point at a random spot of the image's middle."""
    h, w = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8).shape[:2]
    rng = random.Random(seed)
    point = inference_pb2.PointPrompt(x=w * 8 * rng.uniform(0.3, 0.7), y=h * 8 * rng.uniform(0.3, 0.7))
    return inference_pb2.InferRequest(model_id="sam/1", image=inference_pb2.Image(encoded=image), inputs={
        "points": inference_pb2.InputValue(points=inference_pb2.PointPrompts(points=[point]))})


async def _segment_points(cfg: BenchConfig, infer, pids: dict[str, int], images: list[bytes]) -> dict:  # noqa: ANN001
    points = {}
    unique = iter(range(10**9))
    for label, fresh in (("cached", False), ("uncached", True)):
        async def segment(i: int) -> dict[str, float]:
            image = images[0] + (f"fleet-bench-{next(unique)}".encode() if fresh else b"")  # a trailer after the JPEG
            r = await infer(_prompt(image, i))
            return {"gateway_ms": r.timings.gateway_ms, "worker_ms": r.timings.worker_ms,
                    "cached": float(r.promptable_segmentation.embedding_cached)}
        await segment(0)
        result = await run_async(segment, 1, Run(_window(cfg), CpuMeter(pids)))
        payloads = [p for _, p in result.window.samples if isinstance(p, dict)]
        points[label] = {**summarize(result, setup=f"segment, embedding {label}", concurrency=1),
                         "cached_share": sum(p["cached"] for p in payloads) / max(1, len(payloads))}
    cached, uncached = points["cached"]["latency_ms"]["p50"], points["uncached"]["latency_ms"]["p50"]
    mix = await _mix(cfg, infer, images)
    return {**points, "p50_ratio_uncached_over_cached": uncached / cached if cached else 0.0, "mix": mix}


async def _mix(cfg: BenchConfig, infer, images: list[bytes]) -> dict:  # noqa: ANN001
    """Several prompts per image in random order from 8 callers: how many found the embedding cached, and on how
    many workers each image's prompts landed."""
    count = max(4, min(len(images), 8 if cfg.smoke else 24))
    salt = f"mix-{time.time_ns()}".encode()  # images no earlier point sent
    work = [(images[i] + salt + bytes([i]), k) for i in range(count) for k in range(PROMPTS_PER_IMAGE)]
    random.Random(0).shuffle(work)
    queue: asyncio.Queue[tuple[bytes, int]] = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)
    hits, workers_of = 0, {}

    async def caller() -> None:
        nonlocal hits
        while not queue.empty():
            image, k = queue.get_nowait()
            r = await infer(_prompt(image, k))
            hits += r.promptable_segmentation.embedding_cached
            workers_of.setdefault(image, set()).add(r.worker_id)

    await asyncio.gather(*(caller() for _ in range(8)))
    return {"requests": len(work), "images": count, "prompts_per_image": PROMPTS_PER_IMAGE,
            "cache_hit_share": hits / len(work), "best_possible": (PROMPTS_PER_IMAGE - 1) / PROMPTS_PER_IMAGE,
            "mean_workers_per_image": statistics.mean(len(w) for w in workers_of.values())}


def page(lines: int, width: int = 900) -> bytes:
    """A white page of ``lines`` lines of black text (OpenCV's Hershey font at a size PP-OCR reads)."""
    img = np.full((60 + 70 * lines, width, 3), 255, np.uint8)
    for n in range(lines):
        cv2.putText(img, f"Line {n + 1}: invoice 4{n}7 paid", (30, 70 + 70 * n), cv2.FONT_HERSHEY_SIMPLEX, 1.4,
                    (0, 0, 0), 3, cv2.LINE_AA)
    return cv2.imencode(".png", img)[1].tobytes()


async def _ocr_points(cfg: BenchConfig, infer, pids: dict[str, int]) -> list[dict]:  # noqa: ANN001
    points = []
    for lines in OCR_LINES:
        image = page(lines)

        async def read(i: int) -> dict[str, float]:
            r = await infer(inference_pb2.InferRequest(model_id="ocr/1", image=inference_pb2.Image(encoded=image)))
            return {"gateway_ms": r.timings.gateway_ms, "decode_ms": r.timings.decode_ms,
                    "inference_ms": r.timings.inference_ms, "lines": float(len(r.ocr.lines))}
        result = await run_async(read, 2, Run(_window(cfg), CpuMeter(pids)))
        points.append(summarize(result, setup=f"OCR page of {lines} lines", concurrency=2, lines=lines))
    return points


def _in_process_embeddings(cfg: BenchConfig, images: list[bytes]) -> list[dict]:
    from services.model_worker.images import ImageInput  # noqa: PLC0415
    from services.model_worker.pipeline import run_alone  # noqa: PLC0415
    from services.model_worker.processing.decode import ImageLimits  # noqa: PLC0415
    from services.model_worker.processing.params import InferenceParams  # noqa: PLC0415
    from services.model_worker.runtime import RuntimeOptions, open_session  # noqa: PLC0415

    package = MODELS_DIR / "packages" / PACKAGES["clip/1"]
    spec = ModelSpec.from_package(package)
    session = open_session(package / spec.weights.file, spec, RuntimeOptions())
    params, limits = InferenceParams().resolve(spec), ImageLimits()
    inputs = [ImageInput(encoded=i) for i in images]
    points = []
    for threads in (1, 16):
        def embed(i: int) -> dict[str, float]:
            _, _, infer_s, _ = run_alone(inputs[i % len(inputs)], spec, limits, params, session.run)
            return {"inference_ms": infer_s * 1e3}
        result = run_threads(embed, threads, Run(_window(cfg), CpuMeter({"client": os.getpid()})))
        points.append(summarize(result, setup="in-process image embedding", concurrency=threads))
    return points


def _ocr_stages(cfg: BenchConfig) -> list[dict]:
    """In-process time of each OCR stage on each page (mean of a few runs)."""
    import onnxruntime as ort  # noqa: PLC0415

    from services.model_worker.processing import ocr  # noqa: PLC0415

    package = MODELS_DIR / "packages" / PACKAGES["ocr/1"]
    spec = ModelSpec.from_package(package)
    det = ort.InferenceSession(str(package / spec.weights.file), providers=["CPUExecutionProvider"])
    cls = ort.InferenceSession(str(package / spec.graphs["cls"].file), providers=["CPUExecutionProvider"])
    rec = ort.InferenceSession(str(package / spec.graphs["rec"].file), providers=["CPUExecutionProvider"])
    classes = ocr.load_dictionary(rec.get_modelmeta().custom_metadata_map["character"])
    repeats = 1 if cfg.smoke else 5
    rows = []
    for lines in OCR_LINES:
        encoded = page(lines)
        times: dict[str, list[float]] = {"decode": [], "detect": [], "classify": [], "recognize": []}
        for _ in range(repeats):
            t0 = time.perf_counter()
            bgr = cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR)
            t1 = time.perf_counter()
            det_in = ocr.det_preprocess(bgr)
            quads, _ = ocr.det_boxes(det.run(None, {det.get_inputs()[0].name: det_in.tensor[None]})[0][0], det_in)
            t2 = time.perf_counter()
            crops = [ocr.crop_quad(bgr, q) for q in quads]
            crops, _ = ocr.cls_flip(crops, cls.run(None, {cls.get_inputs()[0].name: ocr.cls_preprocess(crops)})[0])
            t3 = time.perf_counter()
            ocr.ctc_decode(rec.run(None, {rec.get_inputs()[0].name: ocr.rec_preprocess(crops)})[0], classes)
            t4 = time.perf_counter()
            for key, (a, b) in zip(times, ((t0, t1), (t1, t2), (t2, t3), (t3, t4))):
                times[key].append((b - a) * 1e3)
        rows.append({"lines": lines, **{f"{k}_ms": statistics.mean(v) for k, v in times.items()}})
    return rows


def report(result: dict) -> str:
    """The scenario's tables (markdown)."""
    emb = {p["concurrency"]: p for p in result["embedding_fleet"]}
    base = {p["concurrency"]: p for p in result["embedding_in_process"]}
    rows = ["| image embeddings | concurrency | req/s | p50 ms | fleet / in-process req/s |", "|---|---|---|---|---|"]
    for c in (1, 16):
        f, b = emb[c], base[c]
        ratio = f["throughput_rps"] / b["throughput_rps"] if b["throughput_rps"] else 0.0
        rows.append(f"| fleet | {c} | {f['throughput_rps']:.1f} | {f['latency_ms']['p50']:.2f} | {ratio:.2f}x |")
        rows.append(f"| in-process | {c} | {b['throughput_rps']:.1f} | {b['latency_ms']['p50']:.2f} | |")
    seg = result["segment"]
    mix = seg["mix"]
    rows += ["", "| promptable segmentation | p50 ms |", "|---|---|",
             f"| embedding cached | {seg['cached']['latency_ms']['p50']:.2f} |",
             f"| embedding not cached | {seg['uncached']['latency_ms']['p50']:.2f} |",
             f"| ratio (uncached / cached) | {seg['p50_ratio_uncached_over_cached']:.2f}x |",
             f"| cache hits in the mix ({mix['images']} images x {mix['prompts_per_image']} prompts, 8 callers, "
             f"{WORKERS} workers) | {mix['cache_hit_share']:.0%} of {mix['requests']} (best possible "
             f"{mix['best_possible']:.0%}); {mix['mean_workers_per_image']:.2f} workers per image |"]
    rows += ["", "| OCR page | images/s (2 callers) | p50 ms | decode ms (fleet) | inference ms (fleet) |",
             "|---|---|---|---|---|"]
    for p in result["ocr"]:
        t = p.get("timings_mean", {})
        rows.append(f"| {p['lines']} lines | {p['throughput_rps']:.1f} | {p['latency_ms']['p50']:.1f} | "
                    f"{t.get('decode_ms', 0):.1f} | {t.get('inference_ms', 0):.1f} |")
    rows += ["", "| OCR stages in-process | decode ms | detect ms | classify ms | recognize ms |", "|---|---|---|---|---|"]
    rows += [f"| {s['lines']} lines | {s['decode_ms']:.1f} | {s['detect_ms']:.1f} | {s['classify_ms']:.1f} | "
             f"{s['recognize_ms']:.1f} |" for s in result["ocr_stages"]]
    return "\n".join(rows)


__all__ = ["page", "planned_s", "report", "run", "Path", "grpc"]
