"""Loads in flight and full queues, across gateway replicas: real Redis, real pools; the worker call is the
test's own function (routing decides whom to call; what the worker answers is scripted here).

- Two gateways placing the same cold model at once: the second request goes to the worker the first one is
  loading it on (the placement record), so the fleet loads it once.
- A load that fails clears the record: the next request places the model afresh.
- A holder whose queue is full: the request goes to the next worker, not back to the caller.
- A load the placement record no longer names (the record expired while the load waited in a long load queue,
  or was shortened once a load was done while a late request loads the model there again): the worker's
  heartbeat lists it (``models_loading``, in three heartbeats), and the request waits for it there instead of
  loading elsewhere.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from fleet.internal.v1 import descriptor_pb2
from fleet.internal.v1.worker_pb2 import WorkerState
from services.cache import FleetCache
from services.common.errors import ModelLoadError, ResourceExhausted
from services.gateway import routing
from services.gateway.copies import CopyController
from services.gateway.discovery import StaticDiscovery
from services.gateway.gateway import Gateway
from services.gateway.placement import CopyPolicy
from services.gateway.workers import WorkerEndpoint, WorkerPool
from tests.gateway.test_workers import SHA, load, state

MODEL = descriptor_pb2.ModelDescriptor(model_id="m/1", sha256=SHA, workspace="demo", size_bytes=1 << 20)
ADDRESSES = [f"127.0.0.1:{i}" for i in (1, 2, 3, 4)]


def gateway_with(cache: FleetCache, seed: int, order: list[str]) -> tuple[Gateway, WorkerPool]:
    pool = WorkerPool(StaticDiscovery(order), 1 << 20, 2.0, 1.0, rng=random.Random(seed))
    for i, address in enumerate(ADDRESSES):  # both replicas read the same heartbeats: nobody holds m/1
        pool.endpoints[address].apply(state(f"w{i}", address))
    copies = CopyController(pool, None, cache, CopyPolicy(), 1.0, 1.0)  # type: ignore[arg-type] - no resolver
    return Gateway(None, pool, cache, 3, 5.0, 0, copies), pool  # type: ignore[arg-type] - routing needs no registry


async def test_a_second_gateway_joins_the_load_the_first_one_started(cache: FleetCache) -> None:
    first, pool_a = gateway_with(cache, 1, ADDRESSES)
    second, pool_b = gateway_with(cache, 2, ADDRESSES[::-1])
    loading = asyncio.Event()
    loaded = asyncio.Event()
    called: list[tuple[str, str, bool]] = []

    def worker(name: str):  # noqa: ANN202 - the call each gateway makes
        async def call(endpoint: WorkerEndpoint, remaining_s: float, existing: bool) -> str:
            called.append((name, endpoint.address, existing))
            if name == "a":
                loading.set()
                await loaded.wait()  # the load takes a while
            return endpoint.address
        return call

    try:
        task = asyncio.get_running_loop().create_task(first._on_worker(MODEL, asyncio.get_running_loop().time() + 5,
                                                                       worker("a")))
        await loading.wait()
        # Make the second replica's own choice differ, as a stale view could: its first home is now busy.
        home = called[0][1]
        pool_b.endpoints[home].apply(state("busy", home, load("other/1", history=[50.0]), sequence=2))
        assert next(routing.homes(pool_b.view, MODEL.model_id, MODEL.size_bytes)).address != home
        joined = asyncio.get_running_loop().create_task(second._on_worker(MODEL, asyncio.get_running_loop().time() + 5,
                                                                          worker("b")))
        await asyncio.sleep(0.2)
        loaded.set()
        (ep_a, _), (ep_b, _) = await task, await joined
        assert ep_a.address == ep_b.address == home  # one load: the second request waited for it there
        assert [c[2] for c in called] == [False, False]
        assert await cache.placements.loading(MODEL.model_id, SHA) == home  # kept until heartbeats list it
    finally:
        await pool_a.close()
        await pool_b.close()


async def test_a_failed_load_clears_the_record_and_a_full_queue_sends_the_request_on(cache: FleetCache) -> None:
    gateway, pool = gateway_with(cache, 3, ADDRESSES)

    async def failing(endpoint: WorkerEndpoint, remaining_s: float, existing: bool) -> str:
        raise ModelLoadError("the weights do not open")

    try:
        with pytest.raises(ModelLoadError):
            await gateway._on_worker(MODEL, asyncio.get_running_loop().time() + 5, failing)
        assert await cache.placements.loading(MODEL.model_id, SHA) is None  # nobody waits for a failed load

        for i, address in enumerate(ADDRESSES[:2]):  # two holders, both with a full queue for the model
            pool.endpoints[address].apply(state(f"w{i}", address, load("m/1"), sequence=2))
        tried: list[tuple[str, bool]] = []

        async def full_holders(endpoint: WorkerEndpoint, remaining_s: float, existing: bool) -> str:
            tried.append((endpoint.address, existing))
            if existing:
                raise ResourceExhausted("the model's queue is full (256 requests)")
            return endpoint.address

        endpoint, _ = await gateway._on_worker(MODEL, asyncio.get_running_loop().time() + 5, full_holders)
        assert [existing for _, existing in tried] == [True, True, False]  # both holders, then a new copy
        assert endpoint.address in ADDRESSES[2:]

        async def all_full(endpoint: WorkerEndpoint, remaining_s: float, existing: bool) -> str:
            raise ResourceExhausted("the model's queue is full (256 requests)")

        with pytest.raises(ResourceExhausted):  # every worker full until the deadline: the caller is told so
            await gateway._on_worker(MODEL, asyncio.get_running_loop().time() + 0.5, all_full)
    finally:
        await pool.close()


def busy_and_loading(address: str, sequence: int, interval: float = 1.0) -> WorkerState:
    """A worker over its load share (its ring position is passed over for a placement), loading m/1."""
    beat = state("busy", address, load("other/1", history=[50.0], interval=interval), sequence=sequence,
                 interval=interval)
    beat.models_loading.append(MODEL.model_id)
    return beat


async def test_a_load_waiting_past_its_record_is_joined_where_the_heartbeat_lists_it(cache: FleetCache) -> None:
    gateway, pool = gateway_with(cache, 4, ADDRESSES)
    home = next(routing.homes(pool.view, MODEL.model_id, MODEL.size_bytes)).address
    # The load was placed on its home long ago; its record expired while it waited behind the worker's other
    # loads (a record lives for one request's deadline), and the worker is now busier than its share.
    for sequence in (2, 3, 4):  # listed by three heartbeats: not a load a record would still cover
        pool.endpoints[home].apply(busy_and_loading(home, sequence=sequence))
    assert await cache.placements.loading(MODEL.model_id, SHA) is None
    called: list[tuple[str, bool]] = []

    async def call(endpoint: WorkerEndpoint, remaining_s: float, existing: bool) -> str:
        called.append((endpoint.address, existing))
        return endpoint.address

    try:
        endpoint, _ = await gateway._on_worker(MODEL, asyncio.get_running_loop().time() + 5, call)
        assert called == [(home, False)]  # it waits for the load there: no second load elsewhere
        assert await cache.placements.loading(MODEL.model_id, SHA) == home  # and records it again
    finally:
        await pool.close()


async def test_a_load_started_again_after_the_record_settled_is_joined_there(cache: FleetCache) -> None:
    first, pool_a = gateway_with(cache, 5, ADDRESSES)
    second, pool_b = gateway_with(cache, 6, ADDRESSES)
    interval = 0.05  # heartbeats every 50 ms: a settled record lasts three of them

    async def call(endpoint: WorkerEndpoint, remaining_s: float, existing: bool) -> str:
        return endpoint.address

    try:
        for pool in (pool_a, pool_b):
            for endpoint in pool.endpoints.values():
                endpoint.apply(state(endpoint.address, endpoint.address, sequence=2, interval=interval))
        home, _ = await first._on_worker(MODEL, asyncio.get_running_loop().time() + 5, call)
        # Loaded and settled: the record lasts two heartbeats more. The worker evicted the model at once, and a
        # request that had joined the load loads it there again, behind other loads, while the record expires.
        for sequence in (3, 4, 5):
            pool_b.endpoints[home.address].apply(busy_and_loading(home.address, sequence=sequence, interval=interval))
        await asyncio.sleep(4 * interval)  # past the record's three intervals (at exactly three: a race, CI lost it)
        assert await cache.placements.loading(MODEL.model_id, SHA) is None
        endpoint, _ = await second._on_worker(MODEL, asyncio.get_running_loop().time() + 5, call)
        assert endpoint.address == home.address  # not a second load on another worker
    finally:
        await pool_a.close()
        await pool_b.close()


async def test_a_settled_record_outlasts_the_heartbeats_that_list_a_load_started_again(cache: FleetCache) -> None:
    """Once loaded, the record stays three heartbeat intervals: a load started again there (the model evicted at
    once, a late request loading it anew) is waited for once three heartbeats list it; two left a gap."""
    gateway, pool = gateway_with(cache, 7, ADDRESSES)

    async def call(endpoint: WorkerEndpoint, remaining_s: float, existing: bool) -> str:
        return endpoint.address

    try:
        endpoint, _ = await gateway._on_worker(MODEL, asyncio.get_running_loop().time() + 5, call)
        placements = cache.placements
        left_ms = await placements._r.pttl(placements._k.placement(MODEL.model_id, SHA))  # heartbeats every 1 s
        assert 2000 < left_ms <= 3000
        assert routing.LISTED_LOAD_BEATS + 1 <= 3
    finally:
        await pool.close()
