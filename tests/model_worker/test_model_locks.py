"""The model manager's per-model locks: one holder per model id, a timeout that answers UNAVAILABLE, no entry left
behind once nobody holds or waits."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from services.common.errors import Unavailable
from services.model_worker.model_locks import ModelLocks


async def test_one_holder_per_model_others_flow() -> None:
    locks, order = ModelLocks(timeout_s=5), []

    async def hold(model_id: str, tag: str) -> None:
        async with locks.hold(model_id):
            order.append(f"{tag} in")
            await asyncio.sleep(0.02)
            order.append(f"{tag} out")

    await asyncio.gather(hold("a/1", "a1"), hold("a/1", "a2"), hold("b/1", "b"))
    assert order.index("a1 out") < order.index("a2 in")  # the same model: one after the other
    assert order.index("b in") < order.index("a1 out")  # another model: not waiting for it
    assert len(locks) == 0


async def test_a_lock_not_taken_in_time_is_unavailable_and_leaves_no_entry() -> None:
    locks = ModelLocks(timeout_s=0.05)
    async with locks.hold("a/1"):
        with pytest.raises(Unavailable, match="'a/1' is still being loaded by another request") as caught:
            async with locks.hold("a/1"):
                pass
        assert caught.value.code == grpc.StatusCode.UNAVAILABLE
        assert len(locks) == 1
    assert len(locks) == 0
