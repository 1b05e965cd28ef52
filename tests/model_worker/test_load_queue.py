"""The worker's load queue: waiting loads run in demand order (requests served per second of loading, ageing),
not first come first served; a load whose requests went away leaves the queue."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from services.common.model_record import ModelRecord
from services.common.model_spec import ModelSpec
from services.model_worker.artifact_policy import ArtifactPolicy
from services.model_worker.artifacts import ArtifactStore
from services.model_worker.load_queue import LoadQueue, Waiting, load_cost, pick
from services.model_worker.manager import ManagerLimits, ModelManager
from services.model_worker.runtime import RuntimeOptions
from tests.artifact_server import artifact_server
from tests.onnx_factory import write_package, yolov8_like

MB = 1 << 20


def waiting(demand: int, size_mb: int, since: float) -> Waiting:
    return Waiting(lambda: demand, load_cost(size_mb * MB), since)


def test_the_load_serving_most_requests_per_second_of_loading_goes_first() -> None:
    queue = [waiting(1, 100, 0.0), waiting(5, 100, 1.0), waiting(6, 500, 0.5)]
    assert pick(queue, now=2.0) == 1  # 5 requests for a 0.6 s load before 6 for a 2.2 s one, or 1 that came first
    assert pick([waiting(3, 100, 1.0), waiting(3, 100, 0.5)], now=2.0) == 1  # equals: the longest waiting


def test_a_lone_request_gains_weight_as_it_waits_so_it_is_never_starved() -> None:
    old, busy = waiting(1, 100, 0.0), waiting(2, 100, 100.0)
    assert pick([old, busy], now=100.0, age_s=30.0) == 0  # 1 + 100 / 30 > 2
    assert pick([waiting(1, 100, 99.0), busy], now=100.0, age_s=30.0) == 1


def test_an_unknown_size_costs_a_typical_load() -> None:
    assert load_cost(None) == load_cost(0) == load_cost(256 * MB) > load_cost(20 * MB)


async def test_slots_are_handed_over_in_pick_order_and_cancelled_waiters_leave() -> None:
    now = [0.0]
    queue = LoadQueue(1, clock=lambda: now[0])
    order: list[str] = []
    release = asyncio.Event()

    async def load(name: str, demand: int) -> None:
        async with queue.slot(lambda: demand, load_cost(100 * MB)):
            order.append(name)
            if name == "first":
                await release.wait()

    first = asyncio.create_task(load("first", 1))
    await asyncio.sleep(0)
    tasks = {name: asyncio.create_task(load(name, d)) for name, d in (("one", 1), ("gone", 9), ("many", 4))}
    await asyncio.sleep(0)
    assert order == ["first"] and len(queue) == 3
    tasks["gone"].cancel()  # its request's deadline passed: nothing loads for it
    await asyncio.sleep(0)
    assert len(queue) == 2
    release.set()
    await asyncio.gather(first, tasks["one"], tasks["many"])
    assert order == ["first", "many", "one"]
    assert queue.running == 0 and len(queue) == 0


async def test_the_manager_loads_the_model_more_requests_wait_for_first(tmp_path: Path) -> None:
    packages = [write_package(tmp_path / f"m{i}", yolov8_like(seed=i)) for i in range(3)]
    records = [ModelRecord(model_id=f"m{i}/1", workspace="demo", spec=ModelSpec.from_package(p),
                           artifact_uri=(p / "model.onnx").as_uri()) for i, p in enumerate(packages)]
    pools = [ThreadPoolExecutor(1), ThreadPoolExecutor(2)]
    manager = ModelManager(ArtifactStore(tmp_path / "cache", policy=ArtifactPolicy(roots=(tmp_path,))),
                           RuntimeOptions(intra_op_threads=1), ManagerLimits(load_slots=1), pools[0], pools[1])
    try:
        with artifact_server() as server:
            server.files["/slow.onnx"] = (packages[0] / "model.onnx").read_bytes()
            server.delay_s = 0.5
            slow = records[0].model_copy(update={"artifact_uri": server.url("/slow.onnx")})
            holding = asyncio.create_task(manager.load(slow))  # takes the one load slot for half a second
            while manager.loads_started == 0:
                await asyncio.sleep(0.01)
            one = asyncio.create_task(manager.acquire(records[1]))  # asked first, by one request
            await asyncio.sleep(0.05)
            many = [asyncio.create_task(manager.acquire(records[2])) for _ in range(3)]  # then by three
            await asyncio.sleep(0.05)
            assert len(manager._load_queue) == 2 and manager.loads_in_progress == 3
            done, _ = await asyncio.wait([one, *many], return_when=asyncio.FIRST_COMPLETED)
            assert {t for t in done} <= set(many)
            assert manager.get("m1/1") is None  # the lone request's load still waits (or runs) behind it
            for model, _ in await asyncio.gather(one, *many):
                manager.release(model)
            await holding
    finally:
        await manager.close()
        for pool in pools:
            pool.shutdown()


@pytest.mark.parametrize("slots", [0, -1])
def test_a_queue_without_slots_is_refused(slots: int) -> None:
    with pytest.raises(ValueError, match="slot"):
        LoadQueue(slots)
