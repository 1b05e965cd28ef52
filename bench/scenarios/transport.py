"""Scenario 1b, the transport floor: a bare ``grpc.aio`` server (``bench.echo_server``, another
process) called with the worker's request and response sizes, at concurrency 1, answering at
once and after a pool thread has waited as long as one in-process inference took (the worker
also awaits its inference in a thread pool). What gRPC alone adds to a
call that stays in flight that long bounds how close the worker can get to in-process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from bench.clients import aio_channel, worker_request
from bench.config import BenchConfig
from bench.drivers import Run, run_async, summarize
from bench.environment import BenchEnv
from bench.processes import CpuMeter
from bench.stats import Window
from bench.workload import MODEL_ID

DEFAULT_HOLD_MS = 10.0
RESPONSE_BYTES = 700  # about a detection response


def planned_s(cfg: BenchConfig) -> float:
    return 2 * (cfg.warmup_s + cfg.measure_s) + 2.0


def run(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    baseline = env.observed.get("baseline", {}).get("points", [])
    hold_ms = baseline[0]["latency_ms"]["p50"] if baseline else DEFAULT_HOLD_MS
    request = worker_request(env.package.descriptor(MODEL_ID), images[0]).SerializeToString()
    server = subprocess.Popen([sys.executable, "-m", "bench.echo_server", str(RESPONSE_BYTES)],
                              stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())  # type: ignore[union-attr]
        points = asyncio.run(_measure(cfg, f"127.0.0.1:{port}", server.pid, request, hold_ms))
    finally:
        server.kill()
        server.wait()
    return {"points": points, "hold_ms": hold_ms, "request_bytes": len(request), "response_bytes": RESPONSE_BYTES}


async def _measure(cfg: BenchConfig, address: str, pid: int, request: bytes, hold_ms: float) -> list[dict]:
    points = []
    async with aio_channel(address) as ch:
        call = ch.unary_unary("/bench.Echo/Call")
        await call(request)
        for hold in (0.0, hold_ms):
            metadata = (("x-hold-ms", f"{hold:.3f}"),)

            async def one(i: int, metadata: tuple = metadata) -> None:
                await call(request, metadata=metadata)

            window = Window(cfg.warmup_s, cfg.measure_s, cfg.min_samples)
            result = await run_async(one, 1, Run(window, CpuMeter({"client": os.getpid(), "server": pid})))
            label = "answers at once" if hold == 0 else f"awaits a thread sleeping {hold:.2f} ms"
            points.append({**summarize(result, setup="bare grpc.aio", label=label, concurrency=1), "hold_ms": hold})
    return points
