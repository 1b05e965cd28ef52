"""Closed-loop load: N concurrent callers (coroutines or threads), each sending its next
request as soon as the previous one answered, through warm-up into the measured window.

Request ``i`` always uses the same image (``i`` modulo the image count), so every setup
sees the same sequence. Failed calls are counted by status, not timed.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from bench.processes import CpuMeter
from bench.stats import Window

AsyncCall = Callable[[int], Awaitable[Any]]


class CallFailed(Exception):
    """A call that answered with an error outside gRPC (e.g. an HTTP status); counted, not timed."""
SyncCall = Callable[[int], Any]


class Run:
    """One measured point: the window, the CPU meter started at its opening, failures by code."""

    def __init__(self, window: Window, meter: CpuMeter | None) -> None:
        self.window, self.meter = window, meter
        self.errors: Counter[str] = Counter()
        self.cpu: dict = {}
        self.on_open: list[Callable[[], None]] = []  # called as the window opens / closes
        self.on_close: list[Callable[[], None]] = []
        self._counter = itertools.count()

    def next_index(self) -> int:
        return next(self._counter)

    def opened(self) -> None:
        for hook in self.on_open:
            hook()
        if self.meter is not None:
            self.meter.start()

    def closed(self) -> None:
        if self.meter is not None:
            self.cpu = self.meter.stop(len(self.window.samples))
        for hook in self.on_close:
            hook()

    async def watch(self) -> None:
        """Open the run when its window opens and close it when the window closes (run beside the callers)."""
        window = self.window
        await asyncio.sleep(max(0.0, window.t0 - time.perf_counter()))
        self.opened()
        while not window.done():
            await asyncio.sleep(0.05)
        self.closed()


async def run_async(call: AsyncCall, concurrency: int, run: Run) -> Run:
    window = run.window

    async def caller() -> None:
        while not window.done():
            i = run.next_index()
            start = time.perf_counter()
            try:
                payload = await call(i)
            except grpc.aio.AioRpcError as exc:
                run.errors[exc.code().name] += 1
                continue
            except CallFailed as exc:
                run.errors[str(exc)] += 1
                continue
            window.record(start, time.perf_counter(), payload)

    await asyncio.gather(run.watch(), *(caller() for _ in range(concurrency)))
    return run


def run_threads(call: SyncCall, threads: int, run: Run) -> Run:
    window = run.window

    def caller() -> None:
        while not window.done():
            i = run.next_index()
            start = time.perf_counter()
            payload = call(i)
            window.record(start, time.perf_counter(), payload)

    workers = [threading.Thread(target=caller, name=f"bench-{n}") for n in range(threads)]
    for t in workers:
        t.start()
    time.sleep(max(0.0, window.t0 - time.perf_counter()))
    run.opened()
    while not window.done():
        time.sleep(0.05)
    run.closed()
    for t in workers:
        t.join()
    return run


def summarize(run: Run, **labels: Any) -> dict[str, Any]:
    """A point for the results: labels, count, throughput, latency, mean response timings, CPU, errors."""
    point = {**labels, **run.window.summary(), "errors": dict(run.errors), "cpu": run.cpu}
    payloads = [p for _, p in run.window.samples if isinstance(p, dict)]
    if payloads:
        keys = [k for k in payloads[0] if k.endswith("_ms") or k in ("batch_size", "cold_start")]
        point["timings_mean"] = {k: sum(p[k] for p in payloads) / len(payloads) for k in keys}
        if all(k in keys for k in ("gateway_ms", "worker_ms")):
            point["split_ms"] = split(run.window.samples)
    return point


WORKER_STAGES = ("decode_ms", "preprocess_ms", "queue_ms", "inference_ms", "postprocess_ms")


def split(samples: list[tuple[float, Any]]) -> dict[str, dict[str, float]]:
    """Where a response's latency went, as p50 and mean of each part (ms): outside the gateway's handler (the
    client, both transports, the gateway's loop before and after), in the gateway's handler outside the worker's
    pipeline (resolving, the worker call's transport, the worker's loop), and each of the worker's stages."""
    parts: dict[str, list[float]] = {"client_side": [], "gateway_side": [], "worker_other": [],
                                     **{k.removesuffix("_ms"): [] for k in WORKER_STAGES}}
    for latency_s, p in samples:
        if not isinstance(p, dict) or not p.get("gateway_ms") or any(k not in p for k in ("worker_ms", *WORKER_STAGES)):
            continue  # an edge whose answer does not carry the worker's stages
        parts["client_side"].append(latency_s * 1e3 - p["gateway_ms"])
        parts["gateway_side"].append(p["gateway_ms"] - p["worker_ms"])
        parts["worker_other"].append(p["worker_ms"] - sum(p[k] for k in WORKER_STAGES))
        for k in WORKER_STAGES:
            parts[k.removesuffix("_ms")].append(p[k])
    return {name: {"p50": sorted(v)[len(v) // 2], "mean": sum(v) / len(v)} for name, v in parts.items() if v}
