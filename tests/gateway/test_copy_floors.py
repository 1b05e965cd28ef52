"""A copy floor is answered once: AddModel's own loads count for the copies controller from the moment they are
decided (``reserve``), and a copy loaded but not yet in a heartbeat counts until the heartbeat lists it. Before,
the controller placed copies of its own beside AddModel's, then released one of the copies AddModel reported."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from fleet.internal.v1 import descriptor_pb2
from services.cache import FleetCache
from services.cache.copies import CopyFloor
from services.gateway.copies import CopyController
from services.gateway.discovery import StaticDiscovery
from services.gateway.placement import CopyPolicy
from services.gateway.workers import WorkerPool
from tests.gateway.test_workers import SHA, load, state

MODEL = descriptor_pb2.ModelDescriptor(model_id="m/1", sha256=SHA, workspace="demo", size_bytes=1 << 20)
ADDRESSES = [f"127.0.0.1:{i}" for i in (1, 2, 3, 4)]


class OneModel:
    """The registry's answer for the one model (the resolver itself is tested in tests/gateway/test_resolver*)."""

    async def resolve(self, model_id: str, workspace: str) -> descriptor_pb2.ModelDescriptor:
        assert model_id == MODEL.model_id
        return MODEL


@pytest.fixture
async def controlled(cache: FleetCache) -> AsyncIterator[tuple[CopyController, WorkerPool]]:
    pool = WorkerPool(StaticDiscovery(ADDRESSES), 1 << 20, 2.0, 1.0, rng=random.Random(1))
    for i, address in enumerate(ADDRESSES):
        pool.endpoints[address].apply(state(f"w{i}", address))
    policy = CopyPolicy(release_window_s=1.0)
    controller = CopyController(pool, OneModel(), cache, policy, 1.0, 1.0)  # type: ignore[arg-type]
    yield controller, pool
    await controller.close()
    await pool.close()


async def added_by(controller: CopyController) -> int:
    """Copies one step of the controller decides to add (counted as pending as it starts them)."""
    before = controller._pending.get(MODEL.model_id, 0)
    await controller.step()
    added = controller._pending.get(MODEL.model_id, 0) - before
    for task in list(controller._tasks):  # the test's workers do not exist: the loads are not made
        task.cancel()
    return added


async def test_addmodels_loads_answer_the_floor_while_loading_and_until_heartbeats_list_them(
        controlled: tuple[CopyController, WorkerPool]) -> None:
    controller, pool = controlled
    chosen = [pool.endpoints[a] for a in ADDRESSES[:2]]
    await controller.keep(CopyFloor(MODEL.model_id, MODEL.workspace, 2))
    for endpoint in chosen:  # AddModel decides its two workers, then loads
        controller.reserve(MODEL.model_id, endpoint)
    assert await added_by(controller) == 0
    for endpoint in chosen:  # the loads return: no heartbeat lists them yet
        pool.note_serving(endpoint, MODEL.model_id, SHA)
        await controller.placed(MODEL.model_id, endpoint)
    assert controller._pending.get(MODEL.model_id, 0) == 0
    assert await added_by(controller) == 0
    for i, endpoint in enumerate(chosen):  # the heartbeats list them
        endpoint.apply(state(f"w{i}", endpoint.address, load(MODEL.model_id, history=[0.0] * 3), sequence=2))
    assert await added_by(controller) == 0
    # One holder's heartbeat no longer lists the model (evicted): the floor places a copy again.
    chosen[1].apply(state("w1", chosen[1].address, sequence=3))
    chosen[1].apply(state("w1", chosen[1].address, sequence=4))
    assert await added_by(controller) == 1
