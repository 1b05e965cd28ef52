"""Affinity routing: requests with one key (an image's prompts) go first to the holder a rendezvous hash of
(model, key) picks, the same on every gateway replica; other keys spread over the holders; a failed holder is
passed over."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from services.gateway.discovery import StaticDiscovery
from services.gateway.routing import attempts
from services.gateway.workers import WorkerPool
from tests.gateway.test_workers import SHA, load, state

MODEL = "sam/1"


def holding_pool(order: list[int], seed: int) -> WorkerPool:
    pool = WorkerPool(StaticDiscovery([f"127.0.0.1:{i}" for i in order]), 1 << 20, 2.0, 1.0, rng=random.Random(seed))
    for i in order:
        address = f"127.0.0.1:{i}"
        pool.endpoints[address].apply(state(f"w{i}", address, load(MODEL, history=[float(i)])))
    return pool


@pytest.fixture
async def pools() -> AsyncIterator[tuple[WorkerPool, WorkerPool]]:
    a, b = holding_pool([1, 2, 3, 4], 1), holding_pool([4, 2, 3, 1], 2)
    yield a, b
    await a.close()
    await b.close()


def first(pool: WorkerPool, affinity: str) -> str:
    return next(attempts(pool.view, MODEL, SHA, 0, pool.rng, affinity=affinity)).endpoint.label


async def test_one_key_one_holder_on_every_replica(pools: tuple[WorkerPool, WorkerPool]) -> None:
    a, b = pools
    for key in ("img-1", "img-2", "img-3"):
        picks = {first(a, key) for _ in range(20)} | {first(b, key) for _ in range(20)}
        assert len(picks) == 1, key
    assert len({first(a, f"img-{i}") for i in range(40)}) >= 3  # keys spread over the holders
    order = [x.endpoint.label for x in attempts(a.view, MODEL, SHA, 0, a.rng, affinity="img-1")]
    assert sorted(order[:4]) == sorted(e.label for e in a.all())  # then every other holder, as fallbacks


async def test_a_failed_holder_is_passed_over(pools: tuple[WorkerPool, WorkerPool]) -> None:
    a, _ = pools
    chosen = first(a, "img-1")
    a.mark_failed(next(e for e in a.all() if e.label == chosen))
    assert first(a, "img-1") != chosen
