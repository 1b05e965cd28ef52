"""A copy is loaded for a demand, and the worker keeps it for that demand: the copies controller's LoadModel
carries the requests per second its plan gives the new copy, and the worker's eviction policy counts the uses
that rate brings in its demand window. Before, a fresh copy started with one use: the next one-off load on its
worker evicted it, before any gateway had routed to it (issue 30: the busiest workers were the lone holders
of popular models whose copies went that way).

A real worker over gRPC (two model places) and the real controller; the holder the copy is for is a
heartbeat only."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from fleet.internal.v1 import descriptor_pb2, worker_pb2
from fleet.v1 import inference_pb2
from services.gateway.copies import CopyController
from services.gateway.discovery import StaticDiscovery
from services.gateway.placement import CopyPolicy, Target, plan
from services.gateway.workers import WorkerPool
from tests.gateway.test_workers import load, state
from tests.model_worker.test_service import PNG, descriptor, start_worker
from tests.onnx_factory import write_package, yolov8_like

POLICY = CopyPolicy(up_load=4.0, up_window_s=3.0, release_load=0.5, release_window_s=6.0)
HOLDER = "127.0.0.1:1"  # a heartbeat only: nothing is called there


class Registry:
    def __init__(self, *models: descriptor_pb2.ModelDescriptor) -> None:
        self.models = {m.model_id: m for m in models}

    async def resolve(self, model_id: str, workspace: str) -> descriptor_pb2.ModelDescriptor:
        return self.models[model_id]


USED = 30  # requests for another model on the worker: loads of these tiny models take 2-8 ms, by chance, so the
# uses compared (GDSF weighs uses x load time / size) differ 30-fold or more either way


def hot_holder(hot: descriptor_pb2.ModelDescriptor, rate: float) -> worker_pb2.WorkerState:
    """The lone holder of ``hot``: 9 requests inside throughout the window, ``rate`` arriving a second."""
    return state("holder", HOLDER, load(hot.model_id, rate=rate, history=[9.0] * 4, sha=hot.sha256,
                                        size=hot.size_bytes))


async def test_the_plan_gives_each_new_copy_its_share_of_the_models_rate() -> None:
    pool = WorkerPool(StaticDiscovery([HOLDER, "127.0.0.1:2", "127.0.0.1:3"]), 1 << 20, 2.0, 1.0,
                      rng=random.Random(1))
    try:
        hot = descriptor_pb2.ModelDescriptor(model_id="hot/1", sha256="ab" * 32, workspace="demo", size_bytes=1 << 20)
        pool.endpoints[HOLDER].apply(hot_holder(hot, rate=36.0))
        for i in (2, 3):
            pool.endpoints[f"127.0.0.1:{i}"].apply(state(f"w{i}", f"127.0.0.1:{i}"))
        actions = plan(pool.view, [Target(hot.model_id, hot.sha256, "demo")], POLICY)
        # ceil(9 / 4) = 3 copies for 36 requests a second: each new one is loaded for 12
        assert [(a.kind, a.reason, a.rate) for a in actions] == [("add", "hot", 12.0)] * 2
    finally:
        await pool.close()


async def test_a_copy_loaded_for_demand_is_kept_over_one_off_loads(tmp_path: Path, redis_url: str,
                                                                   namespace: str) -> None:
    hot, often, once, warm = (descriptor(write_package(tmp_path / name, yolov8_like(seed=i)), f"{name}/1")
                              for i, name in enumerate(("hot", "often", "once", "warm")))
    worker = await start_worker(tmp_path, redis_url, namespace, max_active_models=2)
    address = f"127.0.0.1:{worker.runner.port}"
    pool = WorkerPool(StaticDiscovery([HOLDER, address]), 1 << 20, 2.0, 1.0, rng=random.Random(1))
    controller = CopyController(pool, Registry(hot), None, POLICY, 1.0, 30.0)  # type: ignore[arg-type]
    try:
        # The process's first load pays for the runtime's start-up, which would weigh as load cost: spent here.
        await worker.stub.LoadModel(worker_pb2.LoadModelRequest(model=warm))
        await worker.stub.UnloadModel(worker_pb2.UnloadModelRequest(model_id=warm.model_id))
        pool.endpoints[HOLDER].apply(hot_holder(hot, rate=300.0))
        pool.endpoints[address].apply(state("w-test", address))
        await controller.step()  # the plan: one copy on the worker, for 300 / ceil(9 / 4) = 100 requests a second
        await asyncio.gather(*controller._tasks)
        manager = worker.worker.manager
        assert [m.model_id for m in manager.models()] == ["hot/1"]
        for _ in range(USED):  # another model, used often, while no gateway has routed to the copy yet
            await worker.infer(often, inference_pb2.Image(encoded=PNG))
        await worker.infer(once, inference_pb2.Image(encoded=PNG))  # a third model: one of the others goes
        # The copy holds 1,000 uses (100 a second over the 10 s demand window) against the other's 31: it stays.
        # Loaded with one use, as before, it was the victim.
        assert sorted(m.model_id for m in manager.models()) == ["hot/1", "once/1"]
    finally:
        await controller.close()
        await pool.close()
        await worker.runner.stop()


async def test_a_demand_window_of_zero_counts_a_copy_from_one_use(tmp_path: Path, redis_url: str,
                                                                   namespace: str) -> None:
    """The worker's setting turns it off: the copy is the cheapest victim again."""
    hot, often, once = (descriptor(write_package(tmp_path / name, yolov8_like(seed=i)), f"{name}/1")
                        for i, name in enumerate(("hot", "often", "once")))
    worker = await start_worker(tmp_path, redis_url, namespace, max_active_models=2,
                                eviction_demand_window_s=0.0)
    try:
        await worker.stub.LoadModel(worker_pb2.LoadModelRequest(model=once))  # (the runtime's start-up, spent)
        await worker.stub.UnloadModel(worker_pb2.UnloadModelRequest(model_id=once.model_id))
        await worker.stub.LoadModel(worker_pb2.LoadModelRequest(model=hot, expected_requests_per_second=100.0))
        for _ in range(USED):
            await worker.infer(often, inference_pb2.Image(encoded=PNG))
        await worker.infer(once, inference_pb2.Image(encoded=PNG))
        assert sorted(m.model_id for m in worker.worker.manager.models()) == ["often/1", "once/1"]
    finally:
        await worker.runner.stop()
