"""Scenario 3: client -> gateway -> worker, the public API, at several concurrencies
(unary ``Infer`` over one async channel), and ``InferStream`` at one concurrency."""

from __future__ import annotations

import asyncio
import time

from bench.clients import GatewayCaller, timings
from bench.config import BenchConfig
from bench.drivers import Run, run_async, summarize
from bench.environment import BenchEnv
from bench.processes import CpuMeter
from bench.stats import Window
from bench.workload import MODEL_ID
from fleet.client import build_request
from fleet.v1 import gateway_pb2


def planned_s(cfg: BenchConfig) -> float:
    return len(cfg.fleet_concurrency) * (cfg.warmup_s + cfg.measure_s) + 1.0


def planned_stream_s(cfg: BenchConfig) -> float:
    return cfg.warmup_s + cfg.measure_s + 1.0


def run(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    return asyncio.run(_unary(cfg, env, images))


def run_stream(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    return asyncio.run(_stream(cfg, env, images))


async def _unary(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    points = []
    async with GatewayCaller(env.fleet.gateway.address, env.api_key) as gateway:
        await gateway.infer(MODEL_ID, images[0])  # model loaded, key and model cached (not measured)

        async def call(i: int) -> dict[str, float]:
            return timings(await gateway.infer(MODEL_ID, images[i % len(images)]))

        for concurrency in cfg.fleet_concurrency:
            window = Window(cfg.warmup_s, cfg.measure_s, cfg.min_samples)
            result = await run_async(call, concurrency, Run(window, CpuMeter(env.pids())))
            points.append(summarize(result, setup="fleet", label=f"concurrency {concurrency}",
                                    concurrency=concurrency))
    return {"points": points}


async def _stream(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    """One InferStream call keeping ``stream_concurrency`` requests in flight."""
    run = await stream_run(cfg, env.fleet.gateway.address, env.api_key, env.pids(), images, cfg.stream_concurrency)
    return {"points": [summarize(run, setup="fleet InferStream", label=f"{cfg.stream_concurrency} in flight, one stream",
                                 concurrency=cfg.stream_concurrency)]}


async def stream_run(cfg: BenchConfig, address: str, api_key: str, pids: dict[str, int], images: list[bytes],
                     concurrency: int) -> Run:
    """Warm-up and a measured window of one InferStream call holding ``concurrency`` requests in flight; each
    sample's payload is the response's timings and the worker that answered."""
    window = Window(cfg.warmup_s, cfg.measure_s, cfg.min_samples)
    run = Run(window, CpuMeter(pids))
    slots = asyncio.Semaphore(concurrency)
    started: dict[str, float] = {}

    async def requests():  # noqa: ANN202 - an async generator of stream items
        while True:
            await slots.acquire()
            if window.done():
                return
            i = run.next_index()
            started[str(i)] = time.perf_counter()
            yield gateway_pb2.InferStreamRequest(correlation_id=str(i),
                                                 request=build_request(MODEL_ID, images[i % len(images)]))

    async with GatewayCaller(address, api_key) as gateway:
        await gateway.infer(MODEL_ID, images[0])
        window.started = time.perf_counter()
        watcher = asyncio.get_running_loop().create_task(run.watch())
        async for item in gateway.stub.InferStream(requests(), metadata=gateway.metadata):
            start = started.pop(item.correlation_id)
            if item.HasField("error"):
                run.errors[f"code {item.error.code}"] += 1
            else:
                window.record(start, time.perf_counter(), {**timings(item.response), "worker": item.response.worker_id})
            slots.release()
        await watcher
    return run
