"""Scenario 4: model churn. The package registered under many ids, a worker holding at most
``churn_capacity`` of them, requests picking a model from a Zipf distribution (fixed seed):
hit rate, loads, latency of hits and misses, and the worker's RSS sampled over time."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from bench.clients import GatewayCaller, timings
from bench.config import SEED, BenchConfig
from bench.drivers import Run, run_async, summarize
from bench.environment import BenchEnv, churn_ids
from bench.processes import CpuMeter, RssSampler
from bench.stats import Window, latency_summary
from bench.workload import MODEL_ID

SEQUENCE_LENGTH = 100_000


def planned_s(cfg: BenchConfig) -> float:
    return cfg.churn_warmup_s + cfg.churn_measure_s + 2.0


def zipf_sequence(models: int, s: float, seed: int, length: int = SEQUENCE_LENGTH) -> np.ndarray:
    """Model ranks 0..models-1 with P(rank k) proportional to 1 / (k + 1)^s."""
    weights = 1.0 / np.arange(1, models + 1, dtype=np.float64) ** s
    return np.random.default_rng(seed).choice(models, size=length, p=weights / weights.sum())


def worker_counters(metrics_port: int) -> dict[str, Any]:
    """Model loads and evictions so far (also by reason), and the free GPU memory the worker reads from NVML
    (device 0; None where it exports none), from the worker's Prometheus endpoint."""
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    counts: dict[str, Any] = {"loads": 0.0, "evictions": 0.0, "evictions_by_reason": {}, "gpu_free_bytes": None}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "fleet_worker_model_loads_total" and sample.labels.get("outcome") == "loaded":
                counts["loads"] += sample.value
            elif sample.name == "fleet_worker_evictions_total":
                counts["evictions"] += sample.value
                reason = sample.labels["reason"]
                counts["evictions_by_reason"][reason] = counts["evictions_by_reason"].get(reason, 0.0) + sample.value
            elif sample.name == "fleet_worker_gpu_memory_free_bytes" and sample.labels.get("gpu") == "0":
                counts["gpu_free_bytes"] = int(sample.value)
    return counts


def run(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    return asyncio.run(_run(cfg, env, images))


async def _run(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    ids = churn_ids(cfg.churn_models)
    sequence = zipf_sequence(len(ids), cfg.churn_zipf_s, SEED)
    worker = env.worker
    window = Window(cfg.churn_warmup_s, cfg.churn_measure_s, cfg.min_samples)
    run = Run(window, CpuMeter(env.pids()))
    counters: dict[str, dict[str, float]] = {}
    run.on_open.append(lambda: counters.update(start=worker_counters(worker.metrics_port)))
    run.on_close.append(lambda: counters.update(end=worker_counters(worker.metrics_port)))
    async with GatewayCaller(env.fleet.gateway.address, env.api_key) as gateway:
        await gateway.infer(MODEL_ID, images[0])

        async def call(i: int) -> dict[str, float]:
            rank = int(sequence[i % len(sequence)])
            response = await gateway.infer(ids[rank], images[i % len(images)])
            return {**timings(response), "rank": float(rank), "t_s": time.perf_counter() - rss.started}

        with RssSampler(worker.pid, cfg.rss_interval_s) as rss:
            window.started = rss.started
            await run_async(call, cfg.churn_concurrency, run)
            await asyncio.sleep(cfg.rss_interval_s)
    samples = window.samples
    cold = [lat for lat, p in samples if p["cold_start"]]
    hits = [lat for lat, p in samples if not p["cold_start"]]
    point = summarize(run, setup="churn", label=f"{len(ids)} models, capacity {cfg.churn_capacity}",
                      concurrency=cfg.churn_concurrency)
    rss_mb = [(round(t, 3), b / 2**20) for t, b in rss.samples]
    in_window = [mb for t, mb in rss_mb if t >= cfg.churn_warmup_s]
    return {
        **point,
        "models": len(ids), "capacity": cfg.churn_capacity, "zipf_s": cfg.churn_zipf_s,
        "distinct_models_requested": len({p["rank"] for _, p in samples}),
        "hit_rate": len(hits) / max(1, len(samples)),
        "loads_by_responses": len(cold),
        "loads_by_worker": counters["end"]["loads"] - counters["start"]["loads"],
        "evictions_by_worker": counters["end"]["evictions"] - counters["start"]["evictions"],
        "hit_latency_ms": latency_summary(hits), "miss_latency_ms": latency_summary(cold),
        "rss_mb": {"samples": rss_mb, "min": min(in_window, default=0.0), "max": max(in_window, default=0.0),
                   "first": in_window[0] if in_window else 0.0, "last": in_window[-1] if in_window else 0.0},
        "window_start_s": cfg.churn_warmup_s,
        "load_times_s": [round(p["t_s"], 3) for _, p in samples if p["cold_start"]],
    }
