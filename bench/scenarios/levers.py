"""Levers on the fleet's own cost, each measured against the worker's defaults in the same run.

Each lever's fleet (registry, one worker with the lever's settings, gateway) runs beside a fleet with
the defaults; the two are measured in alternating windows, at concurrency 1 and 16, for a few rounds,
so that load from elsewhere skews both alike. Reported: req/s, p50 and CPU per request of each, and
their ratios (the median of the rounds'). Levers:

- ``single_session``: the worker's adaptive threads off (``FLEET_WORKER_ORT_ADAPTIVE_THREADS=false``): one
  session per model with every intra-op thread, one run at a time, batches included (the default before it).
- ``ort_threads``: one ONNX Runtime intra-op thread per run and two runs of the model at once
  (``FLEET_WORKER_ORT_INTRA_OP_THREADS=1``, ``FLEET_WORKER_CONCURRENT_RUNS=2``), on the benchmark's scenes:
  like the default under load, and a lone request on one thread too.
- ``reduced_decode``: ``FLEET_WORKER_JPEG_REDUCED_DECODE=true``, on camera-sized JPEGs (the scenes
  enlarged 3x, 960 to 2,400 px a side, as cameras send them); also decode + pre-process alone, in
  this process, for the same images.

Settings named ``FLEET_WORKER_*`` go to the lever fleet's worker, the others to its gateway and registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time

from bench.clients import GatewayCaller, timings
from bench.config import BenchConfig
from bench.drivers import Run, run_async, summarize
from bench.environment import BenchEnv, fleet_pids
from bench.processes import CpuMeter
from bench.stats import Window
from bench.workload import JPEG_QUALITY, MODEL_ID, Package
from services.demo.camera import Camera
from services.demo.scenes import TEST_SEEDS, generate_scene
from services.model_worker.pipeline import prepare_image
from services.model_worker.images import ImageInput
from services.model_worker.processing.decode import ImageLimits

LEVERS = {  # in the order of the report
    "single_session": {"FLEET_WORKER_ORT_ADAPTIVE_THREADS": "false"},
    "ort_threads": {"FLEET_WORKER_ORT_INTRA_OP_THREADS": "1", "FLEET_WORKER_CONCURRENT_RUNS": "2"},
    "reduced_decode": {"FLEET_WORKER_JPEG_REDUCED_DECODE": "true"},
}
CONCURRENCY = (1, 16)
ROUNDS = 2
CAMERA_UPSCALE = 3
CAMERA_IMAGES = 8
FLEET_START_S = 16.0  # two fleets start before the first window (seen: 8-13 s here)


def _window_s(cfg: BenchConfig) -> tuple[float, float]:
    return (0.3, 1.0) if cfg.smoke else (1.0, 4.0)


def planned_s(cfg: BenchConfig) -> float:
    warm, measure = _window_s(cfg)
    return ROUNDS * 2 * len(CONCURRENCY) * (warm + measure) + FLEET_START_S


def planned_decode_s(cfg: BenchConfig) -> float:
    return planned_s(cfg) + 4.0


def camera_jpegs(count: int) -> list[bytes]:
    """Demo scenes enlarged CAMERA_UPSCALE times, JPEG-encoded: images as large as cameras send."""
    camera = Camera(CAMERA_UPSCALE, JPEG_QUALITY)
    return [camera.send(generate_scene(TEST_SEEDS + 50_000 + i).image) for i in range(count)]


def run_single_session(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    return _compare(cfg, env, "single_session", images)


def run_ort_threads(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    return _compare(cfg, env, "ort_threads", images)


def run_reduced_decode(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    camera = camera_jpegs(2 if cfg.smoke else CAMERA_IMAGES)
    out = _compare(cfg, env, "reduced_decode", camera)
    out["in_process_prepare_ms"] = _prepare_ms(env.package, camera, 3 if cfg.smoke else 30)
    return out


def _prepare_ms(package: Package, jpegs: list[bytes], repeats: int) -> dict[str, float]:
    """Median milliseconds of decode + pre-process per image, full and reduced, in this process."""
    spec, limits = package.spec.input, ImageLimits()
    out = {}
    for reduced in (False, True):
        times = []
        for _ in range(repeats):
            for jpeg in jpegs:
                t0 = time.perf_counter()
                prepare_image(ImageInput(encoded=jpeg), spec, limits, False, None, reduced)
                times.append((time.perf_counter() - t0) * 1e3)
        out["reduced" if reduced else "full"] = statistics.median(times)
    return out


def _compare(cfg: BenchConfig, env: BenchEnv, lever: str, images: list[bytes]) -> dict:
    settings = LEVERS[lever]
    with contextlib.ExitStack() as stack:
        fleets = {}
        for name, extra in (("defaults", {}), ("lever", settings)):
            worker = {k: v for k, v in extra.items() if k.startswith("FLEET_WORKER_")}
            others = {k: v for k, v in extra.items() if k not in worker}
            fleets[name] = stack.enter_context(env.pinned_fleet(
                [""], {"FLEET_GATEWAY_LOG_LEVEL": "WARNING", **env.env, **others}, {**env.worker_env, **worker},
                name=f"{lever}-{name}"))
        rounds = asyncio.run(_rounds(cfg, env, fleets, images))
    points, ratios = [], {}
    for concurrency in CONCURRENCY:
        for name in fleets:
            runs = [r[(name, concurrency)] for r in rounds]
            points.append({**max(runs, key=lambda p: p["throughput_rps"]), "variant": name})
        pairs = [(r[("defaults", concurrency)], r[("lever", concurrency)]) for r in rounds]
        ratios[str(concurrency)] = {
            "rps": statistics.median(b["throughput_rps"] / a["throughput_rps"] for a, b in pairs),
            "p50_ms_delta": statistics.median(b["latency_ms"]["p50"] - a["latency_ms"]["p50"] for a, b in pairs),
            "cpu_ms_delta": statistics.median(b["cpu"]["total"]["cpu_ms_per_request"]
                                              - a["cpu"]["total"]["cpu_ms_per_request"] for a, b in pairs),
            "wakeups_delta": statistics.median(b["cpu"]["total"]["wakeups_per_request"]
                                               - a["cpu"]["total"]["wakeups_per_request"] for a, b in pairs),
        }
    return {"settings": settings, "points": points, "rounds": len(rounds), "ratios": ratios,
            "images": len(images), "image_bytes_mean": sum(map(len, images)) / len(images)}


async def _rounds(cfg: BenchConfig, env: BenchEnv, fleets: dict, images: list[bytes]) -> list[dict]:
    warm, measure = _window_s(cfg)
    callers = {}
    async with contextlib.AsyncExitStack() as stack:
        for name, fleet in fleets.items():
            caller = await stack.enter_async_context(GatewayCaller(fleet.gateway.address, env.api_key))
            await caller.infer(MODEL_ID, images[0])  # loads the model (not measured)
            callers[name] = (caller, fleet_pids(fleet, env.redis_url))
        rounds = []
        for _ in range(1 if cfg.smoke else ROUNDS):
            outcome = {}
            for concurrency in CONCURRENCY:
                for name, (caller, pids) in callers.items():
                    async def call(i: int, caller: GatewayCaller = caller) -> dict[str, float]:
                        return timings(await caller.infer(MODEL_ID, images[i % len(images)]))

                    run = await run_async(call, concurrency, Run(Window(warm, measure, 5), CpuMeter(pids)))
                    outcome[(name, concurrency)] = summarize(run, setup=name, label=f"concurrency {concurrency}",
                                                             concurrency=concurrency)
            rounds.append(outcome)
    return rounds
