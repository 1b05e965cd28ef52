"""Scenario 1, the physical limit here: decode + pre-process + ONNX Runtime + post-process in
this process, with the worker's own one-thread path (``pipeline.run_alone``) and session
options, one image per run; single stream and a thread pool of callers sharing the session. Also: ONNX Runtime alone on
batches of 1..16 images, which bounds what the worker's dynamic batching can gain here."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np

from bench.config import BenchConfig
from bench.drivers import Run, run_threads, summarize
from bench.processes import CpuMeter
from bench.stats import Window
from bench.workload import Package
from services.model_worker.images import ImageInput, to_pixels
from services.model_worker.processing.decode import ImageLimits
from services.model_worker.pipeline import run_alone
from services.model_worker.processing.params import InferenceParams
from services.model_worker.processing.preprocess import preprocess
from services.model_worker.runtime import RuntimeOptions, open_session


BATCH_SIZES = (1, 2, 4, 8, 16)


def planned_s(cfg: BenchConfig) -> float:
    return len(cfg.baseline_threads) * (cfg.warmup_s + cfg.measure_s) + len(BATCH_SIZES) * _batch_budget_s(cfg) * 1.5


def _batch_budget_s(cfg: BenchConfig) -> float:
    return 0.2 if cfg.smoke else 1.0


def planned_recheck_s(cfg: BenchConfig) -> float:
    return cfg.warmup_s + cfg.measure_s + 1.0


def recheck(cfg: BenchConfig, images: list[bytes]) -> dict:
    """The single stream again after everything else: how much the machine drifted during the run."""
    return run(cfg, images, threads=(1,), setup="in-process (again, at the end)", batches=False)


def run(cfg: BenchConfig, images: list[bytes], threads: tuple[int, ...] = (), setup: str = "in-process",
        batches: bool = True, options: RuntimeOptions | None = None) -> dict:
    package = Package(cfg.package)
    spec = package.spec
    session = open_session(package.weights, spec, options or RuntimeOptions())  # the worker's defaults unless told
    limits = ImageLimits()  # the worker's default limits
    params = InferenceParams().resolve(spec)
    inputs = [ImageInput(encoded=jpeg) for jpeg in images]

    def infer(i: int) -> dict[str, float]:
        prepared, _, infer_s, postprocess_s = run_alone(inputs[i % len(inputs)], spec, limits, params, session.run)
        return {"decode_ms": prepared.decode_s * 1e3, "preprocess_ms": prepared.preprocess_s * 1e3,
                "inference_ms": infer_s * 1e3, "postprocess_ms": postprocess_s * 1e3}

    points = []
    for n in threads or cfg.baseline_threads:
        window = Window(cfg.warmup_s, cfg.measure_s, cfg.min_samples)
        result = run_threads(infer, n, Run(window, CpuMeter({"client": os.getpid()})))
        label = "single stream" if n == 1 else f"pool of {n} threads"
        points.append(summarize(result, setup=setup, label=label, concurrency=n))
    out = {"points": points, "provider": session.provider}
    if batches:
        tensors = [preprocess(to_pixels(image, limits), spec.input)[0] for image in inputs]
        meter = CpuMeter({"client": os.getpid()}).start()
        out["batch_scaling"] = batch_scaling(session.run, tensors, _batch_budget_s(cfg))
        out["batch_scaling_others_cores"] = meter.stop(1)["others_cores"]
    return out


def batch_scaling(run_batch: Callable[[np.ndarray], list[np.ndarray]], tensors: list[np.ndarray],
                  budget_s: float) -> list[dict]:
    """ONNX Runtime alone: milliseconds per run and per image for each batch size (after one warm-up run)."""
    out = []
    for size in BATCH_SIZES:
        batch = np.stack([tensors[i % len(tensors)] for i in range(size)])
        run_batch(batch)
        times = []
        deadline = time.perf_counter() + budget_s
        while time.perf_counter() < deadline or len(times) < 3:
            t0 = time.perf_counter()
            run_batch(batch)
            times.append(time.perf_counter() - t0)
        ms = float(np.median(times)) * 1e3
        out.append({"batch_size": size, "runs": len(times), "ms_per_run": ms, "ms_per_image": ms / size,
                    "images_per_s": size * 1e3 / ms})
    return out
