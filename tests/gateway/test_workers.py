"""Worker choice: healthy first, holders of the model first, then a stable hash of the model id."""

from __future__ import annotations

import time

from services.gateway.workers import WorkerPool


async def test_candidates_prefer_holders_then_a_stable_hash() -> None:
    pool = WorkerPool(["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"], 1 << 20, None, False, 2.0, 1.0)
    try:
        order = [e.address for e in pool.candidates("m/1")]
        assert order == [e.address for e in pool.candidates("m/1")]  # stable
        spread = {pool.candidates(f"m{i}/1")[0].address for i in range(30)}
        assert len(spread) == 3  # different models land on different workers
        holder = pool.endpoints[order[-1]]
        pool.note_serving(holder, "m/1")
        assert pool.candidates("m/1")[0] is holder
        pool.mark_failed(holder)
        assert pool.candidates("m/1")[-1] is holder and "m/1" not in holder.holds
        holder.unhealthy_until = time.monotonic() - 1  # cooldown over: back to the hash order
        assert [e.address for e in pool.candidates("m/1")] == order
    finally:
        await pool.close()
