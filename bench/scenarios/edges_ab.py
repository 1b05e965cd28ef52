"""The HTTP edge's own cost: fleet.v1 ``Infer`` and HTTP ``POST /infer/object_detection`` on the same fleet,
model and images, at concurrency 1, in alternating windows (each round runs both, in swapped order every other
round), so that this machine's changing speed skews both edges alike. Reported per edge: p50, the core's gateway
time (``timings.gateway_ms`` / the JSON ``time``) and CPU ms per request of each process (client, gateway,
worker); per round, HTTP minus fleet.v1, and the median of those deltas (the comparison to trust)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import statistics

import httpx

from bench.clients import TIMEOUT_S, GatewayCaller
from bench.config import BenchConfig
from bench.drivers import CallFailed, Run, run_async, summarize
from bench.environment import BenchEnv
from bench.processes import CpuMeter
from bench.stats import Window
from bench.workload import MODEL_ID

EDGES = ("fleet_v1", "http")
PROCESSES = ("client", "gateway", "worker")


def _rounds(cfg: BenchConfig) -> int:
    return 1 if cfg.smoke else 5


def _window_s(cfg: BenchConfig) -> tuple[float, float]:
    return (0.3, 1.0) if cfg.smoke else (1.0, 4.0)


def planned_s(cfg: BenchConfig) -> float:
    warm, measure = _window_s(cfg)
    return _rounds(cfg) * len(EDGES) * (warm + measure) + 1.0


def run(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    rounds = asyncio.run(_measure(cfg, env, images))
    points, deltas = [], {}
    for edge in EDGES:
        runs = [r[edge] for r in rounds]
        median_run = sorted(runs, key=lambda p: p["latency_ms"]["p50"])[len(runs) // 2]
        points.append({**median_run, "edge": edge})
    pairs = [(r["fleet_v1"], r["http"]) for r in rounds]
    deltas["p50_ms"] = statistics.median(b["latency_ms"]["p50"] - a["latency_ms"]["p50"] for a, b in pairs)
    deltas["gateway_ms"] = statistics.median(_gateway_ms(b) - _gateway_ms(a) for a, b in pairs)
    for proc in PROCESSES:
        deltas[f"{proc}_cpu_ms"] = statistics.median(_cpu(b, proc) - _cpu(a, proc) for a, b in pairs)
    per_round = [{"p50_ms": b["latency_ms"]["p50"] - a["latency_ms"]["p50"],
                  "gateway_ms": _gateway_ms(b) - _gateway_ms(a),
                  **{f"{proc}_cpu_ms": _cpu(b, proc) - _cpu(a, proc) for proc in PROCESSES}} for a, b in pairs]
    return {"points": points, "rounds": len(rounds), "deltas": deltas, "round_deltas": per_round,
            "edges": {edge: [r[edge] for r in rounds] for edge in EDGES}}


def _gateway_ms(point: dict) -> float:
    return point["timings_mean"]["gateway_ms"]


def _cpu(point: dict, proc: str) -> float:
    return point["cpu"].get(proc, {}).get("cpu_ms_per_request", 0.0)


async def _measure(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> list[dict]:
    warm, measure = _window_s(cfg)
    bodies = [{"model_id": MODEL_ID, "image": {"type": "base64", "value": base64.b64encode(i).decode()}}
              for i in images]
    async with contextlib.AsyncExitStack() as stack:
        grpc_caller = await stack.enter_async_context(GatewayCaller(env.fleet.gateway.address, env.api_key))
        http = await stack.enter_async_context(httpx.AsyncClient(
            base_url=env.fleet.gateway.http_url, timeout=TIMEOUT_S,
            headers={"Authorization": f"Bearer {env.api_key}"}))

        async def fleet_v1(i: int) -> dict[str, float]:
            reply = await grpc_caller.infer(MODEL_ID, images[i % len(images)])
            return {"gateway_ms": reply.timings.gateway_ms}

        async def roboflow(i: int) -> dict[str, float]:
            reply = await http.post("/infer/object_detection", json=bodies[i % len(bodies)])
            if reply.status_code != 200:
                raise CallFailed(f"HTTP {reply.status_code}")
            return {"gateway_ms": reply.json()["time"] * 1e3}

        calls = {"fleet_v1": fleet_v1, "http": roboflow}
        for call in calls.values():
            await call(0)  # connection, key and model cached, model loaded (not measured)
        rounds = []
        for n in range(_rounds(cfg)):
            outcome = {}
            for edge in (EDGES if n % 2 == 0 else EDGES[::-1]):
                result = await run_async(calls[edge], 1, Run(Window(warm, measure, 5), CpuMeter(env.pids())))
                outcome[edge] = summarize(result, setup=edge, label="concurrency 1", concurrency=1)
            rounds.append(outcome)
    return rounds
