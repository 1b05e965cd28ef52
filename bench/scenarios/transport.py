"""Scenario 1b, the transport floor: a bare ``grpc.aio`` server (``bench.echo_server``, another
process) called with the worker's request and response sizes, at concurrency 1, answering at
once and after a pool thread has waited as long as one in-process inference took (the worker
also awaits its inference in a thread pool). What gRPC alone adds to a
call that stays in flight that long bounds how close the worker can get to in-process.

Three levers are measured on the waiting call: uvloop instead of asyncio's own event loop (client and
server), a Unix-domain socket instead of loopback TCP (what a gateway and a worker on one host could
use), and grpc's synchronous server, whose handler thread waits itself (no hop to a pool and back)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile

from bench.clients import aio_channel, worker_request
from bench.config import BenchConfig
from bench.drivers import Run, run_async, summarize
from bench.echo_server import loop_factory
from bench.environment import BenchEnv
from bench.processes import CpuMeter
from bench.stats import Window
from bench.workload import MODEL_ID

DEFAULT_HOLD_MS = 10.0
RESPONSE_BYTES = 700  # about a detection response


# (event loop, transport) of the lever points, measured on the waiting call only and for shorter windows.
LEVERS = (("uvloop", "tcp"), ("asyncio", "unix"), ("sync", "tcp"), ("asyncio", "tcp"))
LEVER_WINDOW_FRACTION = 0.5


def planned_s(cfg: BenchConfig) -> float:
    lever = (cfg.warmup_s + cfg.measure_s) * LEVER_WINDOW_FRACTION + 1.0
    return 2 * (cfg.warmup_s + cfg.measure_s) + 2.0 + len(LEVERS) * lever


def run(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    baseline = env.observed.get("baseline", {}).get("points", [])
    hold_ms = baseline[0]["latency_ms"]["p50"] if baseline else DEFAULT_HOLD_MS
    request = worker_request(env.package.descriptor(MODEL_ID), images[0]).SerializeToString()
    points = _with_server(cfg, request, (0.0, hold_ms), "asyncio", "tcp")
    short = dataclasses.replace(cfg, warmup_s=cfg.warmup_s * LEVER_WINDOW_FRACTION,
                                measure_s=cfg.measure_s * LEVER_WINDOW_FRACTION)
    for loop, transport in LEVERS:
        points += _with_server(short, request, (hold_ms,), loop, transport)
    return {"points": points, "hold_ms": hold_ms, "request_bytes": len(request), "response_bytes": RESPONSE_BYTES}


def _with_server(cfg: BenchConfig, request: bytes, holds: tuple[float, ...], loop: str,
                 transport: str) -> list[dict]:
    """Points measured against an echo server of their own on ``loop`` and ``transport`` (the client alike)."""
    folder = tempfile.mkdtemp(prefix="fleet-echo-")
    path = os.path.join(folder, "echo.sock") if transport == "unix" else ""
    server = subprocess.Popen([sys.executable, "-m", "bench.echo_server", str(RESPONSE_BYTES), loop, path],
                              stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())  # type: ignore[union-attr]
        address = f"unix:{path}" if path else f"127.0.0.1:{port}"
        with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
            points = runner.run(_measure(cfg, address, server.pid, request, holds))
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(folder, ignore_errors=True)
    for point in points:
        point.update(loop=loop, transport=transport)
        if len(holds) == 1:  # a lever point
            kind = "sync server" if loop == "sync" else loop
            point["label"] += f" ({kind}, {'Unix socket' if transport == 'unix' else 'TCP'})"
    return points


async def _measure(cfg: BenchConfig, address: str, pid: int, request: bytes, holds: tuple[float, ...]) -> list[dict]:
    points = []
    async with aio_channel(address) as ch:
        call = ch.unary_unary("/bench.Echo/Call")
        await call(request)
        for hold in holds:
            metadata = (("x-hold-ms", f"{hold:.3f}"),)

            async def one(i: int, metadata: tuple = metadata) -> None:
                await call(request, metadata=metadata)

            window = Window(cfg.warmup_s, cfg.measure_s, cfg.min_samples)
            result = await run_async(one, 1, Run(window, CpuMeter({"client": os.getpid(), "server": pid})))
            label = "answers at once" if hold == 0 else f"awaits a thread sleeping {hold:.2f} ms"
            points.append({**summarize(result, setup="bare grpc.aio", label=label, concurrency=1), "hold_ms": hold})
    return points
