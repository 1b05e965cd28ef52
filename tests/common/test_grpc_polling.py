"""gRPC core's socket polling in service processes: chosen before grpc is imported, and it
really removes the EventEngine threads' wake-ups (counted in /proc, not timed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.common import grpc_polling

ROOT = Path(__file__).resolve().parents[2]

# Imports a service's entry module the way `python -m services.X` does (so its choice runs
# first), then makes unary calls through a real grpc.aio server and channel in this process and
# counts the voluntary context switches of gRPC's EventEngine threads and of all threads.
PROBE = r"""
import asyncio, importlib, json, os, sys
importlib.import_module(sys.argv[1])
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

def switches():
    engine = total = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            name = open(f"/proc/self/task/{tid}/comm").read().strip()
            count = next(int(l.split()[1]) for l in open(f"/proc/self/task/{tid}/status")
                         if l.startswith("voluntary_ctxt_switches"))
        except (FileNotFoundError, StopIteration):
            continue
        total += count
        engine += count if name == "event_engine" else 0
    return engine, total

async def main():
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for _ in range(20):
            await stub.Check(health_pb2.HealthCheckRequest())
        (e0, t0), n = switches(), 300
        for _ in range(n):
            await stub.Check(health_pb2.HealthCheckRequest())
        e1, t1 = switches()
    await server.stop(None)
    print(json.dumps({"experiments": os.environ.get("GRPC_EXPERIMENTS"), "engine": (e1 - e0) / n,
                      "total": (t1 - t0) / n}))

asyncio.run(main())
"""


def probe(module: str, **env: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if k not in ("GRPC_EXPERIMENTS", grpc_polling.ENV)}
    out = subprocess.run([sys.executable, "-c", PROBE, module], env={**environ, **env}, cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts context switches in /proc")
@pytest.mark.parametrize("module", ["services.gateway.__main__", "services.model_worker.__main__",
                                    "services.registry.__main__"])
def test_each_service_can_poll_on_the_completion_queue_thread(module: str) -> None:
    polled = probe(module, FLEET_GRPC_EVENT_ENGINE="false")
    engine = probe(module)  # gRPC's default
    assert polled["experiments"] == grpc_polling.EXPERIMENTS
    assert engine["experiments"] is None
    # With EventEngine, its threads wake several times per call (about 6 here); without, hardly ever.
    assert engine["engine"] >= 2.0, engine
    assert polled["engine"] < 0.5, polled
    assert polled["total"] < engine["total"] - 2.0, (polled, engine)


def test_an_explicit_grpc_experiments_is_kept() -> None:
    code = ("from services.common import grpc_polling as g; env = {'GRPC_EXPERIMENTS': '-event_engine_client'}; "
            "print(g.choose(env)); print(env['GRPC_EXPERIMENTS'])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=True).stdout.splitlines()
    assert out == ["GRPC_EXPERIMENTS=-event_engine_client (set in the environment)", "-event_engine_client"]


def test_too_late_leaves_the_environment_alone() -> None:
    import grpc  # noqa: F401 - this process has gRPC already

    env: dict[str, str] = {}
    assert "imported before" in grpc_polling.choose(env)
    assert env == {}
