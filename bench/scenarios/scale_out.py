"""Scenario: scale-out. One hot model served by one worker, then by two, each worker pinned to a core
of its own (``taskset``) with one ONNX Runtime intra-op thread and one pre/post-processing thread, so a
worker is one core's worth of serving. The client and the gateway are kept light: one InferStream call
(no per-request call set-up or auth) holding ``scale_concurrency`` requests in flight, the gateway
logging warnings only. Each setup runs in a fleet of its own; ``AddModel(copies=N)`` places the copies
before the window opens.

Reports req/s for each, the ratio of two workers to one, how the requests spread over the workers,
and the CPU every process used (and what else on the machine took meanwhile: on a shared machine
that skews the ratio, so it is recorded beside it). The two setups are measured in alternating
windows over several rounds, so that load from elsewhere skews both alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import statistics
import time
from collections import Counter

import grpc

from bench.clients import GatewayCaller
from bench.config import BenchConfig
from bench.drivers import summarize
from bench.environment import BenchEnv, fleet_pids
from bench.scenarios.fleet import stream_run
from bench.workload import MODEL_ID
from fleet.v1 import gateway_pb2

FLEET_START_S = 10.0
WORKER_ENV = {
    "FLEET_WORKER_ORT_INTRA_OP_THREADS": "1",
    "FLEET_WORKER_ORT_INTER_OP_THREADS": "1",
    "FLEET_WORKER_CPU_THREADS": "1",
    "FLEET_WORKER_LOG_LEVEL": "WARNING",
}


def planned_s(cfg: BenchConfig) -> float:
    return 2 * cfg.scale_rounds * (cfg.scale_warmup_s + cfg.scale_measure_s) + FLEET_START_S


def run(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    """Both fleets run side by side (the idle one costs a heartbeat now and then) and are measured in turn,
    one window each per round, so load from elsewhere on the machine that comes and goes skews both alike;
    the ratio is the median of the rounds' ratios."""
    cores = os.cpu_count() or 1
    pinned = shutil.which("taskset") is not None  # util-linux; without it the workers run unpinned (recorded)
    with contextlib.ExitStack() as stack:
        fleets = {}
        for workers in (1, 2):
            cpus = [str(i % cores) if pinned else "" for i in range(workers)]
            gateway_env = {"FLEET_GATEWAY_LOG_LEVEL": "WARNING", "FLEET_GATEWAY_MAX_COPIES": str(workers)}
            fleets[workers] = (stack.enter_context(env.pinned_fleet(cpus, gateway_env, {**WORKER_ENV,
                                                                                       **env.worker_env})), cpus)
        rounds = asyncio.run(_rounds(cfg, env, fleets, images))
    one, two = ([r[w] for r in rounds] for w in (1, 2))
    ratios = [b["throughput_rps"] / a["throughput_rps"] for a, b in zip(one, two) if a["throughput_rps"]]
    return {"points": [_median_point(one), _median_point(two)], "rounds": rounds,
            "round_ratios": ratios, "ratio": statistics.median(ratios) if ratios else 0.0,
            "concurrency": cfg.scale_concurrency, "target_ratio": 1.6, "cores": cores, "pinned": pinned}


async def _rounds(cfg: BenchConfig, env: BenchEnv, fleets: dict, images: list[bytes]) -> list[dict[int, dict]]:
    for workers, (fleet, _) in fleets.items():
        async with GatewayCaller(fleet.gateway.address, env.api_key) as gateway:
            await gateway.stub.AddModel(gateway_pb2.AddModelRequest(model_id=MODEL_ID, copies=workers),
                                        metadata=gateway.metadata, timeout=120)
            await _copies_listed(gateway, workers)
    rounds = []
    for _ in range(cfg.scale_rounds):
        rounds.append({workers: await _window(cfg, env, fleet, cpus, images, workers)
                       for workers, (fleet, cpus) in fleets.items()})
    return rounds


async def _window(cfg: BenchConfig, env: BenchEnv, fleet, cpus: list[str], images: list[bytes],  # noqa: ANN001
                  workers: int) -> dict:
    window_cfg = dataclasses.replace(cfg, warmup_s=cfg.scale_warmup_s, measure_s=cfg.scale_measure_s)
    run = await stream_run(window_cfg, fleet.gateway.address, env.api_key, fleet_pids(fleet, env.redis_url), images,
                           cfg.scale_concurrency)
    point = summarize(run, setup=f"{workers} worker{'s' if workers > 1 else ''}, pinned", workers=workers,
                      label=f"{workers} x 1 core", concurrency=cfg.scale_concurrency)
    by_worker = Counter(p["worker"] for _, p in run.window.samples if isinstance(p, dict))
    point["requests_by_worker"] = dict(sorted(by_worker.items()))
    point["cpus"] = cpus
    return point


def _median_point(points: list[dict]) -> dict:
    """The round with the median throughput, with every round's requests by worker added up."""
    middle = sorted(points, key=lambda p: p["throughput_rps"])[len(points) // 2]
    total: Counter[str] = Counter()
    for p in points:
        total.update(p["requests_by_worker"])
    return {**middle, "requests_by_worker_all_rounds": dict(sorted(total.items())),
            "rounds_rps": [p["throughput_rps"] for p in points]}


async def _copies_listed(gateway: GatewayCaller, copies: int, timeout_s: float = 15.0) -> None:
    """Wait until the gateway's heartbeat view lists the copies (every worker takes traffic from the start)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            reply = await gateway.stub.DescribeModels(gateway_pb2.DescribeModelsRequest(), metadata=gateway.metadata,
                                                      timeout=10)
        except grpc.aio.AioRpcError:
            reply = None
        if reply is not None and any(len(p.copies) >= copies for p in reply.placements if p.model_id == MODEL_ID):
            return
        await asyncio.sleep(0.2)
