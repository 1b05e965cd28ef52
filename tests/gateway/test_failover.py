"""A request whose workers are all gone keeps trying, with growing pauses, for as long as its deadline allows.

Real worker processes' servers on loopback: the only worker is down when the request arrives and comes up
on the same port a moment later (a holder restarting); with no worker ever, the request ends UNAVAILABLE
at its deadline, not at once, and without spinning.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from fleet.internal.v1 import descriptor_pb2
from services.cache.embedded import free_port
from services.common.errors import Unavailable
from services.common.server import Runner
from services.gateway.copies import CopyController
from services.gateway.discovery import StaticDiscovery
from services.gateway.gateway import Gateway
from services.gateway.placement import CopyPolicy
from services.gateway.workers import WorkerEndpoint, WorkerPool
from services.model_worker.server import build
from services.model_worker.settings import WorkerSettings

MODEL = descriptor_pb2.ModelDescriptor(model_id="m/1", sha256="ab" * 32, workspace="demo", size_bytes=1 << 20)


def gateway_over(address: str) -> tuple[Gateway, WorkerPool]:
    pool = WorkerPool(StaticDiscovery([address]), 1 << 20, 2.0, 1.0)
    copies = CopyController(pool, None, None, CopyPolicy(), 1.0, 1.0)  # type: ignore[arg-type] - no resolver needed
    return Gateway(None, pool, None, 3, 5.0, 0, copies), pool  # type: ignore[arg-type] - routing needs neither


async def test_a_request_outlives_its_only_worker_restarting(tmp_path: Path, redis_url: str, namespace: str) -> None:
    port = free_port()
    gateway, pool = gateway_over(f"127.0.0.1:{port}")
    tries: list[float] = []

    async def describe(endpoint: WorkerEndpoint, remaining_s: float, existing: bool):  # noqa: ANN202
        tries.append(time.monotonic())
        return await endpoint.client.describe(min(remaining_s, 2.0))

    async def restart_later() -> Runner:
        await asyncio.sleep(1.0)
        settings = WorkerSettings(port=port, metrics_port=0, redis_url=redis_url, redis_namespace=namespace,
                                  model_cache_dir=str(tmp_path / "cache"), worker_id="w-back",
                                  artifact_roots=str(tmp_path))
        runner = Runner(build(settings))
        await runner.start()
        return runner

    started = time.monotonic()
    restarting = asyncio.get_running_loop().create_task(restart_later())
    try:
        endpoint, reply = await gateway._on_worker(MODEL, started + 20.0, describe)
        took = time.monotonic() - started
    finally:
        await (await restarting).stop()
        await pool.close()
    assert reply.load.worker_id == "w-back" and endpoint.address == f"127.0.0.1:{port}"
    assert 1.0 < took < 10.0, took
    assert not endpoint.failed  # the call that succeeded brought it back into rotation
    print(f"\nanswered {took:.2f} s after the request arrived, on try {len(tries)}")


async def test_with_no_worker_at_all_the_request_fails_at_its_deadline_without_spinning() -> None:
    gateway, pool = gateway_over(f"127.0.0.1:{free_port()}")  # nothing listens there
    tries = 0

    async def describe(endpoint: WorkerEndpoint, remaining_s: float, existing: bool):  # noqa: ANN202
        nonlocal tries
        tries += 1
        return await endpoint.client.describe(remaining_s)

    started = time.monotonic()
    try:
        with pytest.raises(Unavailable, match="before its deadline") as err:
            await gateway._on_worker(MODEL, started + 2.0, describe)
    finally:
        await pool.close()
    took = time.monotonic() - started
    assert 1.9 < took < 3.0, took
    assert 3 <= tries <= 12, tries  # pauses of 50 ms doubling to 0.5 s: a handful of tries, not a loop
    assert "127.0.0.1" not in str(err.value)
