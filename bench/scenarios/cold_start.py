"""Scenario 5: time from the first request for a model that is not loaded to its response,
through the gateway, for weights (a) on local disk (file://) and (b) not cached, downloaded
over HTTP from a server on 127.0.0.1. Each repeat uses a model id never loaded before;
before each HTTP repeat the worker's artifact cache is emptied. A second request to the
same model right after gives the warm latency beside it."""

from __future__ import annotations

import asyncio
import statistics
import time

from bench.clients import GatewayCaller
from bench.config import BenchConfig
from bench.environment import BenchEnv, cold_ids
from bench.workload import MODEL_ID

KINDS = {"file": "artifact on local disk (file://)", "http": "not cached: HTTP download from 127.0.0.1"}


def planned_s(cfg: BenchConfig) -> float:
    return 2 * cfg.cold_repeats * 1.5


def run(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    return asyncio.run(_run(cfg, env, images))


async def _run(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    out = {}
    async with GatewayCaller(env.fleet.gateway.address, env.api_key) as gateway:
        await gateway.infer(MODEL_ID, images[0])  # channel, auth and worker warm (not measured)
        for kind, title in KINDS.items():
            samples = []
            for model_id in cold_ids(kind, cfg.cold_repeats):
                if kind == "http":
                    env.cached_artifact().unlink(missing_ok=True)
                t0 = time.perf_counter()
                cold = await gateway.infer(model_id, images[0])
                t1 = time.perf_counter()
                warm = await gateway.infer(model_id, images[0])
                t2 = time.perf_counter()
                samples.append({"model_id": model_id, "cold_ms": (t1 - t0) * 1e3, "warm_ms": (t2 - t1) * 1e3,
                                "cold_worker_ms": cold.timings.worker_ms, "warm_worker_ms": warm.timings.worker_ms,
                                "cold_start_flag": cold.timings.cold_start, "warm_cold_flag": warm.timings.cold_start})
            out[kind] = {
                "title": title, "repeats": len(samples), "samples": samples,
                "median_cold_ms": statistics.median(s["cold_ms"] for s in samples),
                "median_warm_ms": statistics.median(s["warm_ms"] for s in samples),
                "median_load_ms": statistics.median(s["cold_worker_ms"] - s["warm_worker_ms"] for s in samples),
            }
    return {"kinds": out, "weights_bytes": env.package.weights.stat().st_size}
