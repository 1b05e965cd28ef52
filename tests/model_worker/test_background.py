"""Background requests (a workflow's model steps) yield to interactive ones: a lane of their own in the batcher,
bounded, on threads of lowered CPU priority; a background batch waits for its turn while an interactive request
is in flight (bounded) and runs on SCHED_IDLE threads while interactive requests are about; a real worker serves
an interactive request past a background backlog. Order and counts are asserted, never speed."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from fleet.internal.v1 import worker_pb2
from fleet.v1 import inference_pb2
from services.common.background import Turns, background_pool
from services.common.errors import ResourceExhausted
from services.model_worker.batcher import Background, Batcher
from tests.conftest import PACKAGES
from tests.model_worker.test_batch_requests import encoded
from tests.model_worker.test_service import WorkerHarness, descriptor, start_worker


class Gate:
    """A fake model run: background runs (on the ``bg`` threads) wait until the gate opens; every run answers
    each row's sum. Counts the background runs at once and their sizes, and names the threads runs ran on."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._lock = threading.Lock()
        self.running = self.max_background_at_once = 0
        self.sizes: list[int] = []
        self.threads: list[str] = []

    def open(self) -> None:
        self._open.set()

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        self.threads.append(threading.current_thread().name)
        if threading.current_thread().name.startswith("bg"):
            with self._lock:
                self.running += 1
                self.max_background_at_once = max(self.max_background_at_once, self.running)
                self.sizes.append(batch.shape[0])
            self._open.wait(5)
            with self._lock:
                self.running -= 1
        return [batch.reshape(batch.shape[0], -1).sum(axis=1, keepdims=True)]


@pytest.fixture
def pools():
    with ThreadPoolExecutor(2, thread_name_prefix="fg") as interactive, \
            ThreadPoolExecutor(2, thread_name_prefix="bg") as background:
        yield interactive, background


async def _submit(batcher: Batcher, value: float, background: bool, done: list[str], name: str):
    batcher.announce(background)
    out = await batcher.submit(np.full((2, 2), value, np.float32), background)
    done.append(name)
    return out


async def test_an_interactive_request_is_served_before_a_background_backlog(pools) -> None:
    interactive, background = pools
    gate = Gate()
    batcher = Batcher(gate, interactive, max_batch_size=2, max_delay_s=0.0, max_queue=100, concurrent_runs=1,
                      background=Background(background, runs=1, max_queue=100))
    done: list[str] = []
    backlog = [asyncio.create_task(_submit(batcher, 1.0, True, done, f"bg{i}")) for i in range(8)]
    await asyncio.sleep(0.1)  # a first background batch runs (held at the gate), the rest queue
    assert gate.running == 1 and batcher.queued == 4  # (the next batch of 2 waits for the slot)
    assert batcher.idle()  # background work alone leaves the model idle for an interactive request
    assert not batcher.idle(background=True)  # but not for another background one: it joins the lane
    urgent = asyncio.create_task(_submit(batcher, 2.0, False, done, "interactive"))
    out = await asyncio.wait_for(urgent, 5)  # runs beside the held background run: an interactive slot is free
    assert float(out.outputs[0][0]) == 8.0 and out.batch_size == 1  # a batch of its own
    assert done == ["interactive"]
    gate.open()
    await asyncio.gather(*backlog)
    assert sorted(done[1:]) == sorted(f"bg{i}" for i in range(8))
    assert max(gate.sizes) <= 2 and gate.max_background_at_once == 1  # background runs bounded
    await batcher.close()


async def test_a_background_request_runs_alone_only_on_a_model_with_nothing_else_to_do(pools) -> None:
    interactive, background = pools
    batcher = Batcher(Gate(), interactive, max_batch_size=2, max_delay_s=0.0, max_queue=100, concurrent_runs=1,
                      background=Background(background, runs=1, max_queue=100))
    assert batcher.idle(background=True)
    async with batcher.exclusive():  # an interactive request running alone
        assert not batcher.idle(background=True) and not batcher.idle()
    async with batcher.exclusive(background=True):  # a background one alone: takes its lane's slot only
        assert batcher.idle() and not batcher.idle(background=True)
    await batcher.close()


async def test_a_full_background_queue_is_resource_exhausted_and_leaves_interactive_alone(pools) -> None:
    interactive, background = pools
    gate = Gate()
    batcher = Batcher(gate, interactive, max_batch_size=1, max_delay_s=0.0, max_queue=100, concurrent_runs=1,
                      background=Background(background, runs=1, max_queue=2))
    done: list[str] = []
    held = [asyncio.create_task(_submit(batcher, 1.0, True, done, "bg0"))]
    await asyncio.sleep(0.1)  # running, held at the gate
    for i in (1, 2, 3):  # the first waits for the run slot, the next two are queued: the background queue is full
        held.append(asyncio.create_task(_submit(batcher, 1.0, True, done, f"bg{i}")))
        await asyncio.sleep(0.05)
    assert gate.running == 1 and batcher.queued == 2
    with pytest.raises(ResourceExhausted, match="background queue is full"):
        await _submit(batcher, 1.0, True, done, "refused")
    await asyncio.wait_for(_submit(batcher, 1.0, False, done, "interactive"), 5)
    gate.open()
    await asyncio.gather(*held)
    assert done[0] == "interactive" and "refused" not in done
    await batcher.close()


async def test_an_interactive_request_in_flight_holds_the_next_background_batch_back(pools) -> None:
    interactive, background = pools
    gate, turns = Gate(), Turns(max_hold_s=30.0)
    batcher = Batcher(gate, interactive, max_batch_size=2, max_delay_s=0.0, max_queue=100, concurrent_runs=1,
                      background=Background(background, runs=1, max_queue=100, turns=turns))
    done: list[str] = []
    backlog = [asyncio.create_task(_submit(batcher, 1.0, True, done, f"bg{i}")) for i in range(6)]
    await asyncio.sleep(0.1)  # a first background batch runs (held at the gate), the rest queue
    assert gate.sizes == [2]
    with turns.interactive():  # an interactive request arrives while background batches are queued
        gate.open()  # the running batch ends ...
        await asyncio.sleep(0.3)
        assert gate.sizes == [2] and sorted(done) == ["bg0", "bg1"]  # ... and the next one waits its turn
        await asyncio.wait_for(_submit(batcher, 2.0, False, done, "interactive"), 5)
    await asyncio.wait_for(asyncio.gather(*backlog), 5)  # the interactive request has ended: their turn
    assert done.index("interactive") == 2 and len(gate.sizes) == 3
    await batcher.close()


async def test_a_background_batch_held_back_starts_after_the_longest_hold(pools) -> None:
    interactive, background = pools
    gate, held = Gate(), []
    gate.open()
    turns = Turns(max_hold_s=0.2, held=held.append)
    batcher = Batcher(gate, interactive, max_batch_size=2, max_delay_s=0.0, max_queue=100, concurrent_runs=1,
                      background=Background(background, runs=1, max_queue=100, turns=turns))
    done: list[str] = []
    with turns.interactive():  # interactive work never stops: background work still goes on (never starved)
        await asyncio.wait_for(_submit(batcher, 1.0, True, done, "bg"), 5)
    assert done == ["bg"] and len(held) == 1 and 0.15 <= held[0] < 2.0
    await asyncio.wait_for(_submit(batcher, 1.0, True, done, "bg-alone"), 5)  # none in flight: no wait
    assert len(held) == 1
    await batcher.close()


async def test_background_batches_run_on_idle_threads_only_while_interactive_requests_are_about(pools) -> None:
    interactive, background = pools
    gate = Gate()
    gate.open()
    turns = Turns(max_hold_s=0.0, window_s=0.3)
    with ThreadPoolExecutor(1, thread_name_prefix="idle") as idle:
        batcher = Batcher(gate, interactive, max_batch_size=2, max_delay_s=0.0, max_queue=100, concurrent_runs=1,
                          background=Background(background, runs=1, max_queue=100, turns=turns, idle_executor=idle))
        done: list[str] = []
        await _submit(batcher, 1.0, True, done, "alone")
        with turns.interactive():
            await _submit(batcher, 1.0, True, done, "beside")
        await _submit(batcher, 1.0, True, done, "just-after")  # within the window: still yielding
        await asyncio.sleep(0.4)
        await _submit(batcher, 1.0, True, done, "later")
        assert [name[:2] for name in gate.threads] == ["bg", "id", "id", "bg"]
        await batcher.close()


async def test_beside_interactive_work_background_stages_wait_until_their_cpu_share_has_refilled() -> None:
    held: list[float] = []
    turns = Turns(max_hold_s=0.0, window_s=0.3, held=held.append, cpu_share=1.0, burst_s=0.0)
    turns.charge(0.25)  # a stage took 0.25 CPU seconds: at one CPU second a second, owed for 0.25 s
    with turns.interactive():
        await asyncio.wait_for(turns.turn(), 5)
    assert len(held) == 1 and held[0] >= 0.2
    turns.charge(30.0)  # owed for 30 s, but no interactive work is about (past the window): no wait
    await asyncio.sleep(0.35)
    await asyncio.wait_for(turns.turn(), 5)
    assert len(held) == 1
    unbounded = Turns(max_hold_s=0.0, held=held.append)  # no share: charges change nothing
    unbounded.charge(30.0)
    with unbounded.interactive():
        await asyncio.wait_for(unbounded.turn(), 5)
    assert len(held) == 1


async def test_stages_waiting_for_the_share_do_not_all_start_when_it_refills() -> None:
    turns = Turns(max_hold_s=0.0, cpu_share=10.0, burst_s=0.05)
    for _ in range(10):  # stages of 1 CPU second: ~0.9 s is the typical cost one that starts reserves
        turns.charge(1.0)
    await asyncio.sleep(1.1)  # refilled (10 s owed, at 10 a second) to its burst, 0.05
    with turns.interactive():
        waiting = [asyncio.create_task(turns.turn()) for _ in range(4)]
        await asyncio.sleep(0.01)
        assert [t.done() for t in waiting].count(True) == 1  # one starts and reserves ~0.9 s; three wait
        turns.charge(0.0)  # it took nothing after all: its reservation comes back
        await asyncio.wait_for(asyncio.gather(*waiting), 5)


def test_a_metered_pool_charges_the_cpu_time_its_calls_took_beside_interactive_work() -> None:
    turns = Turns(max_hold_s=0.0, cpu_share=0.001, burst_s=1.0)

    def spin() -> str:
        start = time.thread_time()
        while time.thread_time() - start < 0.05:
            pass
        return threading.current_thread().name

    with ThreadPoolExecutor(1, thread_name_prefix="metered") as pool:
        metered = turns.metered(pool)
        assert metered.submit(spin).result(5).startswith("metered")
        assert turns.tokens() >= 1.0 - 0.001  # no interactive work in flight meanwhile: it held nothing up
        with turns.interactive():
            metered.submit(spin).result(5)
        assert turns.tokens() <= 1.0 - 0.05 + 0.01  # charged at least the 50 ms of CPU it spun for
    assert Turns(max_hold_s=0.0).metered(pool) is pool  # without a share the pool is used as it is


async def test_without_a_background_lane_background_requests_share_the_one_queue(pools) -> None:
    _, one = pools  # every run on the "bg" threads, held at the gate
    gate = Gate()
    batcher = Batcher(gate, one, max_batch_size=1, max_delay_s=0.0, max_queue=100, concurrent_runs=1)
    done: list[str] = []
    backlog = [asyncio.create_task(_submit(batcher, 1.0, True, done, f"bg{i}")) for i in range(3)]
    await asyncio.sleep(0.1)
    assert not batcher.idle()
    urgent = asyncio.create_task(_submit(batcher, 2.0, False, done, "interactive"))
    await asyncio.sleep(0.1)
    gate.open()
    await asyncio.gather(urgent, *backlog)
    assert done[-1] == "interactive"  # first in, first served
    await batcher.close()


def test_background_pool_threads_run_at_a_lowered_priority() -> None:
    if not hasattr(os, "setpriority"):
        pytest.skip("no per-thread nice on this platform")
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    pool = background_pool(2, 5, "test-bg")
    try:
        theirs = pool.submit(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())).result(5)
    finally:
        pool.shutdown()
    assert theirs == min(19, own + 5)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own  # the caller's thread is untouched


def test_background_pool_threads_can_run_under_sched_idle() -> None:
    if not hasattr(os, "sched_setscheduler"):
        pytest.skip("no SCHED_IDLE on this platform")
    pool = background_pool(1, 0, "test-idle", idle=True)
    try:
        policy = pool.submit(lambda: os.sched_getscheduler(threading.get_native_id())).result(5)
    finally:
        pool.shutdown()
    assert policy == os.SCHED_IDLE
    assert os.sched_getscheduler(threading.get_native_id()) != os.SCHED_IDLE


# ---- a real worker (gRPC on loopback, the demo detector) ----------------------------------------------------
@pytest.fixture
async def harness(tmp_path: Path, redis_url: str, namespace: str) -> AsyncIterator[WorkerHarness]:
    h = await start_worker(tmp_path, redis_url, namespace, artifact_roots=f"{tmp_path},{PACKAGES}",
                           concurrent_runs=1, background_runs=1, max_batch_size=4, cpu_threads=2,
                           ort_adaptive_threads=False)
    yield h
    await h.runner.stop()


async def test_a_worker_serves_an_interactive_request_past_its_background_backlog(harness: WorkerHarness) -> None:
    model = descriptor(PACKAGES / "shapes-det", "shapes-det/1")
    images = [inference_pb2.Image(encoded=encoded(9_200_000 + i)) for i in range(8)]
    await harness.infer(model, images[0])  # loaded
    held = harness.worker.manager.models()[0]
    batcher = held.batcher
    done: list[str] = []
    # Background runs wait for the interactive answer (or 20 s), so the backlog forms and stays on a slow machine
    # too: without the lane, the interactive request would wait behind them (the 20 s) and come last.
    gate = threading.Event()
    opener = threading.Timer(20.0, gate.set)
    opener.start()

    def gated(run):  # noqa: ANN001, ANN202 - a session's run
        return lambda batch: (gate.wait(), run(batch))[1]

    batcher._background.run = gated(batcher._background.run)
    held.session.run_background = gated(held.session.run_background)

    async def background_call(i: int) -> None:
        request = inference_pb2.InferBatchRequest(model_id=model.model_id, images=images)
        reply = await harness.stub.InferBatch(worker_pb2.ModelWorkerServiceInferBatchRequest(
            model=model, request=request, priority=worker_pb2.PRIORITY_BACKGROUND))
        assert all(item.HasField("response") for item in reply.response.items)
        done.append(f"bg{i}")

    calls = 6  # 48 images, in runs of at most 4, one run at a time
    backlog = [asyncio.create_task(background_call(i)) for i in range(calls)]
    try:
        for _ in range(3000):  # until a backlog has formed
            if batcher.queued >= 8:
                break
            await asyncio.sleep(0.01)
        assert batcher.queued >= 8
        answer = await harness.infer(model, images[1])
        done.append("interactive")
    finally:
        gate.set()
        opener.cancel()
    await asyncio.gather(*backlog)
    assert answer.object_detection.detections
    assert done.index("interactive") <= 1, done  # past the backlog (without the lane: after nearly all of it)


async def test_a_worker_yields_on_idle_threads_while_interactive_requests_are_about(
        tmp_path: Path, redis_url: str, namespace: str) -> None:
    if not hasattr(os, "sched_setscheduler"):
        pytest.skip("no SCHED_IDLE on this platform")
    h = await start_worker(tmp_path, redis_url, namespace, artifact_roots=f"{tmp_path},{PACKAGES}",
                           background_interactive_window_ms=300)
    try:
        model = descriptor(PACKAGES / "shapes-det", "shapes-det/1")
        pipeline, loop = h.worker.pipeline, asyncio.get_running_loop()

        def policy() -> int:
            return os.sched_getscheduler(threading.get_native_id())

        await h.stub.Infer(worker_pb2.ModelWorkerServiceInferRequest(model=model, request=inference_pb2.InferRequest(
            model_id=model.model_id, image=inference_pb2.Image(encoded=encoded(9_300_000))),
            priority=worker_pb2.PRIORITY_BACKGROUND))  # a background call alone: no interactive one about
        assert await loop.run_in_executor(pipeline.pool(True), policy) != os.SCHED_IDLE
        await h.infer(model, inference_pb2.Image(encoded=encoded(9_300_001)))
        assert await loop.run_in_executor(pipeline.pool(True), policy) == os.SCHED_IDLE  # beside one
        assert await loop.run_in_executor(pipeline.pool(False), policy) != os.SCHED_IDLE
        await asyncio.sleep(0.4)
        assert await loop.run_in_executor(pipeline.pool(True), policy) != os.SCHED_IDLE  # the window is over
    finally:
        await h.runner.stop()


async def test_an_interactive_request_runs_on_one_thread_while_background_work_is_about(
        tmp_path: Path, redis_url: str, namespace: str) -> None:
    """Beside workflows a run spread over every core stalls whenever another thread takes one of them: an
    interactive request alone on its model then runs on the model's one-thread session, and on every intra-op
    thread again once background work has not been about for the window."""
    h = await start_worker(tmp_path, redis_url, namespace, artifact_roots=f"{tmp_path},{PACKAGES}",
                           ort_intra_op_threads=2, max_batch_size=4, background_interactive_window_ms=300,
                           background_one_thread_interactive=True)
    try:
        model = descriptor(PACKAGES / "shapes-det", "shapes-det/1")
        images = [inference_pb2.Image(encoded=encoded(9_400_000 + i)) for i in range(8)]

        async def background() -> None:
            reply = await h.stub.InferBatch(worker_pb2.ModelWorkerServiceInferBatchRequest(
                model=model, request=inference_pb2.InferBatchRequest(model_id=model.model_id, images=images),
                priority=worker_pb2.PRIORITY_BACKGROUND))
            assert all(item.HasField("response") for item in reply.response.items)

        await background()  # batches form: the model's one-thread session opens
        session = h.worker.manager.models()[0].session
        for _ in range(500):
            if session.batch_session is not None:
                break
            await asyncio.sleep(0.01)
        assert session.batch_session is not None
        runs: list[str] = []
        wide, narrow = session.run, session.run_background
        session.run = lambda batch: (runs.append("wide"), wide(batch))[1]
        session.run_background = lambda batch: (runs.append("one thread"), narrow(batch))[1]
        await asyncio.sleep(0.4)  # background work is no longer about
        await h.infer(model, images[0])
        await background()
        runs.clear()
        await h.infer(model, images[1])
        assert runs == ["one thread"]
        h.worker.pipeline.one_thread_beside_background = False  # the setting off: every intra-op thread
        await h.infer(model, images[2])
        h.worker.pipeline.one_thread_beside_background = True
        await asyncio.sleep(0.4)
        await h.infer(model, images[3])
        assert runs == ["one thread", "wide", "wide"]
    finally:
        await h.runner.stop()


def _held_total() -> tuple[float, float]:
    """(count, sum) of the worker's held-stage histogram so far (this process's registry)."""
    from prometheus_client import REGISTRY  # noqa: PLC0415

    count = REGISTRY.get_sample_value("fleet_worker_background_held_seconds_count") or 0.0
    return count, REGISTRY.get_sample_value("fleet_worker_background_held_seconds_sum") or 0.0


async def test_a_worker_holds_background_work_to_its_share_of_the_cores_beside_interactive_traffic(
        tmp_path: Path, redis_url: str, namespace: str) -> None:
    """No turns (max hold 0): every wait comes from the share, 0.01 of the two cores (20 ms of CPU a second), which a
    background stage run beside interactive requests spends; without interactive traffic none waits."""
    h = await start_worker(tmp_path, redis_url, namespace, artifact_roots=f"{tmp_path},{PACKAGES}", cpu_threads=2,
                           background_max_hold_ms=0, background_cpu_share=0.01,
                           background_interactive_window_ms=300)
    try:
        model = descriptor(PACKAGES / "shapes-det", "shapes-det/1")
        images = [inference_pb2.Image(encoded=encoded(9_500_000 + i)) for i in range(4)]

        async def background(image: inference_pb2.Image) -> None:
            reply = await h.stub.Infer(worker_pb2.ModelWorkerServiceInferRequest(
                model=model, request=inference_pb2.InferRequest(model_id=model.model_id, image=image),
                priority=worker_pb2.PRIORITY_BACKGROUND), timeout=60)
            assert reply.response.object_detection.detections

        await h.infer(model, images[0])  # loaded
        await asyncio.sleep(0.4)
        before = _held_total()
        for image in images:  # alone: at full speed, never held
            await background(image)
        assert _held_total() == before

        stop = asyncio.Event()

        async def interactive() -> int:
            calls = 0
            while not stop.is_set():
                await h.infer(model, images[calls % len(images)])
                calls += 1
            return calls

        callers = [asyncio.create_task(interactive()) for _ in range(2)]
        try:
            for image in images * 2:
                await background(image)
        finally:
            stop.set()
            assert min(await asyncio.gather(*callers)) > 0
        count, seconds = _held_total()
        assert count > before[0] and seconds - before[1] >= 0.1  # held until the share had refilled
        assert h.worker.pipeline.turns.cpu_share == pytest.approx(0.02)
    finally:
        await h.runner.stop()
