"""Scenario 2: a client calling one worker process directly over loopback gRPC
(``ModelWorkerService.Infer`` with the resolved descriptor): no gateway, no registry.

Also times, in this process, the fixed per-request work the RPC adds on top of the
pipeline: parsing the descriptor into a record and (de)serializing request and response.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bench.clients import WorkerCaller, timings, worker_request
from bench.config import BenchConfig
from bench.drivers import Run, run_async, summarize
from bench.environment import BenchEnv
from bench.processes import CpuMeter
from bench.stats import Window
from bench.workload import MODEL_ID
from fleet.internal.v1 import descriptor_pb2, worker_pb2
from fleet.v1 import inference_pb2
from services.common import descriptors


def planned_s(cfg: BenchConfig) -> float:
    return len(cfg.worker_concurrency) * (cfg.warmup_s + cfg.measure_s) + 2.0


def run(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    return asyncio.run(_run(cfg, env, images))


async def _run(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    descriptor = env.package.descriptor(MODEL_ID)
    points = []
    async with WorkerCaller(env.worker.address, descriptor) as worker:
        sample = await worker.infer(images[0])  # loads the model (not measured)

        async def call(i: int) -> dict[str, float]:
            return timings(await worker.infer(images[i % len(images)]))

        for concurrency in cfg.worker_concurrency:
            window = Window(cfg.warmup_s, cfg.measure_s, cfg.min_samples)
            result = await run_async(call, concurrency, Run(window, CpuMeter(env.pids())))
            points.append(summarize(result, setup="worker-only", label=f"concurrency {concurrency}",
                                    concurrency=concurrency))
    loops = 200 if cfg.smoke else 3000
    return {"points": points, "fixed_costs_us": fixed_costs(descriptor, images[0], sample, loops)}


def _per_call_us(fn: Callable[[], object], n: int) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


def fixed_costs(descriptor: descriptor_pb2.ModelDescriptor, jpeg: bytes, response: inference_pb2.InferResponse,
                n: int) -> dict[str, float]:
    """Microseconds per call of the per-request protobuf/validation work (best of 3 loops)."""
    request = worker_request(descriptor, jpeg)
    wire = request.SerializeToString()
    reply = response.SerializeToString()
    return {
        "request_bytes": float(len(wire)),
        "response_bytes": float(len(reply)),
        "descriptor_from_proto": _per_call_us(lambda: descriptors.from_proto(descriptor), n),
        "worker_request_serialize": _per_call_us(request.SerializeToString, n),
        "worker_request_parse": _per_call_us(lambda: worker_pb2.ModelWorkerServiceInferRequest.FromString(wire), n),
        "response_serialize": _per_call_us(response.SerializeToString, n),
        "response_parse": _per_call_us(lambda: inference_pb2.InferResponse.FromString(reply), n),
    }
