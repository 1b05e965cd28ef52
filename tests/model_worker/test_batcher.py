"""Dynamic batching: shared runs under concurrency, no waiting alone, errors to every waiter."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from services.common.errors import ResourceExhausted, Unavailable
from services.model_worker.batcher import Batcher


class Recorder:
    """A fake model run: records batch sizes, returns each row's sum as its output."""

    def __init__(self, delay_s: float = 0.0, fail: bool = False) -> None:
        self.sizes: list[int] = []
        self.delay_s, self.fail = delay_s, fail
        self.release = threading.Event()
        self.release.set()

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        self.release.wait(5)
        self.sizes.append(batch.shape[0])
        if self.fail:
            raise RuntimeError("model exploded")
        return [batch.reshape(batch.shape[0], -1).sum(axis=1, keepdims=True)]


@pytest.fixture
def pool():
    with ThreadPoolExecutor(2) as executor:
        yield executor


async def submit(batcher: Batcher, value: float):
    batcher.announce()
    return await batcher.submit(np.full((2, 2), value, np.float32))


async def test_concurrent_requests_share_runs_and_get_their_own_rows(pool) -> None:
    run = Recorder()
    run.release.clear()  # hold the first run so the rest queue up behind it
    batcher = Batcher(run, pool, max_batch_size=8, max_delay_s=0.01, max_queue=100)
    tasks = [asyncio.create_task(submit(batcher, float(i))) for i in range(17)]
    await asyncio.sleep(0.1)
    run.release.set()
    results = await asyncio.gather(*tasks)
    assert [float(r.outputs[0][0]) for r in results] == [4.0 * i for i in range(17)]
    assert sum(run.sizes) == 17 and max(run.sizes) == 8 and len(run.sizes) <= 4
    assert all(r.batch_size >= 1 for r in results)
    await batcher.close()


async def test_a_lone_request_does_not_wait_for_the_batch_delay(pool) -> None:
    batcher = Batcher(Recorder(), pool, max_batch_size=8, max_delay_s=30.0, max_queue=100)
    result = await asyncio.wait_for(submit(batcher, 1.0), timeout=5)  # would take 30 s if it waited
    assert result.batch_size == 1
    await batcher.close()


async def test_announced_requests_are_waited_for(pool) -> None:
    run = Recorder()
    batcher = Batcher(run, pool, max_batch_size=8, max_delay_s=5.0, max_queue=100)
    batcher.announce()  # a second request is still pre-processing
    first = asyncio.create_task(submit(batcher, 1.0))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(batcher.submit(np.ones((2, 2), np.float32)))
    results = await asyncio.gather(first, second)
    assert run.sizes == [2] and all(r.batch_size == 2 for r in results)
    await batcher.close()


async def test_a_failed_run_fails_every_waiter_and_the_batcher_goes_on(pool) -> None:
    run = Recorder(fail=True)
    batcher = Batcher(run, pool, max_batch_size=8, max_delay_s=0.0, max_queue=100)
    results = await asyncio.gather(*(submit(batcher, 1.0) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    run.fail = False
    assert (await submit(batcher, 2.0)).outputs[0][0] == 8.0
    await batcher.close()


async def test_full_queue_is_resource_exhausted(pool) -> None:
    run = Recorder()
    run.release.clear()
    batcher = Batcher(run, pool, max_batch_size=1, max_delay_s=0.0, max_queue=2)
    tasks = [asyncio.create_task(submit(batcher, 1.0)) for _ in range(5)]
    await asyncio.sleep(0.1)
    run.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert any(isinstance(r, ResourceExhausted) for r in results)
    assert any(not isinstance(r, Exception) for r in results)
    await batcher.close()


async def test_close_fails_queued_requests(pool) -> None:
    run = Recorder()
    run.release.clear()
    batcher = Batcher(run, pool, max_batch_size=1, max_delay_s=0.0, max_queue=10)
    tasks = [asyncio.create_task(submit(batcher, 1.0)) for _ in range(3)]
    await asyncio.sleep(0.05)
    closing = asyncio.create_task(batcher.close())
    await asyncio.sleep(0.05)
    run.release.set()
    await closing
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, Unavailable) for r in results)
    with pytest.raises(Unavailable):
        await submit(batcher, 1.0)


class Overlap(Recorder):
    """Counts how many runs are inside the model at once."""

    def __init__(self) -> None:
        super().__init__(delay_s=0.0)
        self.lock = threading.Lock()
        self.inside = self.most_inside = 0

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        time.sleep(0.05)
        try:
            return super().__call__(batch)
        finally:
            with self.lock:
                self.inside -= 1


@pytest.mark.parametrize("runs", [1, 2, 3])
async def test_concurrent_runs_bound_how_many_batches_run_at_once(runs: int) -> None:
    run = Overlap()
    with ThreadPoolExecutor(4) as executor:
        batcher = Batcher(run, executor, max_batch_size=1, max_delay_s=0.0, max_queue=100, concurrent_runs=runs)
        results = await asyncio.gather(*(submit(batcher, float(i)) for i in range(9)))
        await batcher.close()
    assert [float(r.outputs[0][0]) for r in results] == [4.0 * i for i in range(9)]
    assert run.most_inside == runs


async def test_close_with_runs_in_flight_and_requests_held_fails_them_all(pool) -> None:
    run = Recorder()
    run.release.clear()
    batcher = Batcher(run, pool, max_batch_size=1, max_delay_s=0.0, max_queue=10, concurrent_runs=2)
    tasks = [asyncio.create_task(submit(batcher, 1.0)) for _ in range(5)]
    await asyncio.sleep(0.05)  # two runs in flight, one request held by the loop, two queued
    closing = asyncio.create_task(batcher.close())
    await asyncio.sleep(0.05)
    run.release.set()
    await asyncio.wait_for(closing, 5)
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
    assert all(isinstance(r, Unavailable) for r in results)


def _cancelled_count() -> float:
    from prometheus_client import REGISTRY  # noqa: PLC0415

    return REGISTRY.get_sample_value("fleet_worker_cancelled_requests_total") or 0.0


async def test_requests_whose_callers_went_away_are_dropped_before_running(pool) -> None:
    """A cancelled call (its client gone) leaves the queue without taking part in any model run."""
    run = Recorder()
    run.release.clear()  # the first run holds the model; the rest queue behind it
    batcher = Batcher(run, pool, max_batch_size=4, max_delay_s=0.0, max_queue=100)
    before = _cancelled_count()
    first = asyncio.create_task(submit(batcher, 100.0))
    await asyncio.sleep(0.05)
    queued = [asyncio.create_task(submit(batcher, float(i))) for i in range(10)]
    await asyncio.sleep(0.05)
    for task in queued[:7]:
        task.cancel()
    await asyncio.sleep(0.01)
    run.release.set()
    kept = await asyncio.wait_for(asyncio.gather(*queued[7:]), 5)
    await first
    assert [float(r.outputs[0][0]) for r in kept] == [4.0 * i for i in (7, 8, 9)]
    # The first request alone, then the three kept in one run: cancelled ones neither ran nor took batch places.
    assert run.sizes == [1, 3]
    assert _cancelled_count() - before == 7
    await batcher.close()


async def test_a_model_is_idle_only_while_none_of_its_runs_is_in_progress(pool) -> None:
    """With two slots, a request arriving while another runs alone must join the batch path (which
    runs on the one-thread session), not run alone beside it with every thread."""
    run = Recorder()
    run.release.clear()
    batcher = Batcher(run, pool, max_batch_size=4, max_delay_s=0.0, max_queue=10, concurrent_runs=2)
    assert batcher.idle()
    entered, leave = asyncio.Event(), asyncio.Event()

    async def alone() -> None:
        async with batcher.exclusive():
            entered.set()
            await leave.wait()

    holder = asyncio.create_task(alone())
    await entered.wait()
    assert not batcher.idle()  # a slot is free, but a run is in progress
    leave.set()
    await holder
    assert batcher.idle()
    batched = asyncio.create_task(submit(batcher, 1.0))
    await asyncio.sleep(0.05)  # the batch runs (held by the recorder)
    assert not batcher.idle() and batcher.queued == 0
    run.release.set()
    assert float((await batched).outputs[0][0]) == 4.0
    assert batcher.idle()
    await batcher.close()
