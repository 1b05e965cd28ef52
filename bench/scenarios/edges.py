"""Scenarios 3b/3c: the same model and concurrencies through the gateway's other edges: the HTTP API's
Roboflow route (``POST /infer/object_detection``, base64 JSON, httpx) and the Open Inference Protocol
over gRPC (``ModelInfer`` with a BYTES input, the fleet's own OIP stubs). Compare with ``fleet``."""

from __future__ import annotations

import asyncio
import base64

import httpx

from bench.clients import TIMEOUT_S, aio_channel
from bench.config import BenchConfig
from bench.drivers import CallFailed, Run, run_async, summarize
from bench.environment import BenchEnv
from bench.processes import CpuMeter
from bench.stats import Window
from bench.workload import MODEL_ID
from fleet_oip.v2 import grpc_service_pb2 as oip
from fleet_oip.v2 import grpc_service_pb2_grpc as oip_grpc


def planned_s(cfg: BenchConfig) -> float:
    return len(cfg.edge_concurrency) * (cfg.warmup_s + cfg.measure_s) + 1.0


def run_http(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    return asyncio.run(_http(cfg, env, images))


def run_oip(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    return asyncio.run(_oip(cfg, env, images))


async def _sweep(cfg: BenchConfig, env: BenchEnv, call, setup: str) -> dict:  # noqa: ANN001
    await call(0)  # key and model cached, model loaded (not measured)
    points = []
    for concurrency in cfg.edge_concurrency:
        window = Window(cfg.warmup_s, cfg.measure_s, cfg.min_samples)
        result = await run_async(call, concurrency, Run(window, CpuMeter(env.pids())))
        points.append(summarize(result, setup=setup, label=f"concurrency {concurrency}", concurrency=concurrency))
    return {"points": points}


async def _http(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    bodies = [{"model_id": MODEL_ID, "image": {"type": "base64", "value": base64.b64encode(i).decode()}} for i in images]
    limits = httpx.Limits(max_connections=max(cfg.edge_concurrency), max_keepalive_connections=max(cfg.edge_concurrency))
    async with httpx.AsyncClient(base_url=env.fleet.gateway.http_url, timeout=TIMEOUT_S, limits=limits,
                                 headers={"Authorization": f"Bearer {env.api_key}"}) as client:

        async def call(i: int) -> dict[str, float]:
            reply = await client.post("/infer/object_detection", json=bodies[i % len(bodies)])
            if reply.status_code != 200:
                raise CallFailed(f"HTTP {reply.status_code}")
            return {"gateway_ms": reply.json()["time"] * 1e3}

        return await _sweep(cfg, env, call, "fleet HTTP (Roboflow route)")


async def _oip(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    requests = []
    for image in images:
        request = oip.ModelInferRequest(model_name=MODEL_ID)
        request.inputs.add(name="image", datatype="BYTES", shape=[1])
        request.raw_input_contents.append(len(image).to_bytes(4, "little") + image)
        requests.append(request)
    metadata = (("authorization", f"Bearer {env.api_key}"),)
    channel = aio_channel(env.fleet.gateway.address)
    try:
        stub = oip_grpc.GRPCInferenceServiceStub(channel)

        async def call(i: int) -> dict[str, float]:
            reply = await stub.ModelInfer(requests[i % len(requests)], metadata=metadata, timeout=TIMEOUT_S)
            return {"gateway_ms": reply.parameters["gateway_ms"].double_param}

        return await _sweep(cfg, env, call, "fleet OIP gRPC (ModelInfer)")
    finally:
        await channel.close()
