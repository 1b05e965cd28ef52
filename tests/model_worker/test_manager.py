"""The model manager: one load per model, locks, LRU by count and memory, pinning, freeing memory."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import weakref
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import pytest

from services.common.errors import ModelLoadError, ModelPackageError
from services.common.model_record import ModelRecord
from services.common.model_spec import ModelSpec
from services.model_worker.artifact_policy import ArtifactPolicy
from services.model_worker.artifacts import ArtifactStore
from services.model_worker.manager import ManagerLimits, ModelManager
from services.model_worker.runtime import RuntimeOptions
from tests.artifact_server import artifact_server
from tests.onnx_factory import write_package, yolov8_like


def record(pkg: Path, model_id: str, uri: str | None = None, workspace: str = "demo") -> ModelRecord:
    spec = ModelSpec.from_package(pkg)
    return ModelRecord(model_id=model_id, workspace=workspace, spec=spec,
                       artifact_uri=uri or (pkg / "model.onnx").as_uri())


@pytest.fixture
def packages(tmp_path: Path) -> list[Path]:
    return [write_package(tmp_path / f"m{i}", yolov8_like(seed=i)) for i in range(4)]


@pytest.fixture
async def make_manager(tmp_path: Path) -> AsyncIterator:
    pools = [ThreadPoolExecutor(2), ThreadPoolExecutor(2)]
    managers: list[ModelManager] = []

    def make(**limits: object) -> ModelManager:
        free = limits.pop("free_fraction", None)
        m = ModelManager(ArtifactStore(tmp_path / "cache", policy=ArtifactPolicy(roots=(tmp_path,))), RuntimeOptions(intra_op_threads=1),
                         ManagerLimits(**limits), pools[0], pools[1], free_fraction=free)
        managers.append(m)
        return m

    yield make
    for m in managers:
        await m.close()
    await asyncio.sleep(0.05)
    for pool in pools:
        pool.shutdown()


async def test_fifty_concurrent_first_requests_load_once(make_manager, packages) -> None:
    manager = make_manager()
    rec = record(packages[0], "m/1")
    results = await asyncio.gather(*(manager.acquire(rec) for _ in range(50)))
    assert manager.loads_started == 1
    assert len({id(model) for model, _ in results}) == 1
    assert sum(cold for _, cold in results) == 1
    for model, _ in results:
        manager.release(model)
    assert manager.get("m/1").request_count == 50


async def test_a_failed_load_releases_its_lock_and_the_next_request_retries(make_manager, packages) -> None:
    manager = make_manager()
    good = record(packages[0], "m/1")
    bad = good.model_copy(update={"spec": good.spec.model_copy(
        update={"weights": good.spec.weights.model_copy(update={"sha256": "f" * 64})})})
    with pytest.raises(ModelPackageError, match="expects"):
        await manager.acquire(bad)
    assert manager.get("m/1") is None and len(manager._locks) == 0
    model, cold = await manager.acquire(good)
    assert cold and manager.get("m/1") is model


async def test_models_whose_outputs_do_not_match_their_type_are_refused(make_manager, tmp_path) -> None:
    manager = make_manager()
    pkg = write_package(tmp_path / "odd", yolov8_like(extra_rows=3))  # 9 rows for 2 classes
    with pytest.raises(ModelLoadError, match="do not match model_type"):
        await manager.load(record(pkg, "odd/1"))
    not_onnx = write_package(tmp_path / "junk", b"this is not an onnx file")
    with pytest.raises(ModelLoadError, match="could not open"):
        await manager.load(record(not_onnx, "junk/1"))
    wrong_input = write_package(tmp_path / "wrong", yolov8_like(), input={"width": 64, "height": 64, "name": "x"})
    with pytest.raises(ModelLoadError, match="input is named"):
        await manager.load(record(wrong_input, "wrong/1"))
    assert manager.models() == []


async def test_concurrent_load_and_unload_never_make_two_copies(make_manager, packages) -> None:
    manager = make_manager()
    rec = record(packages[0], "m/1")
    ops = [manager.load(rec) if i % 2 == 0 else manager.unload("m/1") for i in range(40)]
    await asyncio.gather(*ops)
    assert len([m for m in manager.models() if m.model_id == "m/1"]) <= 1
    assert len(manager._locks) == 0
    await manager.load(rec)
    assert [m.model_id for m in manager.models()] == ["m/1"]


async def test_lru_by_count_evicts_the_least_recently_used(make_manager, packages) -> None:
    manager = make_manager(max_models=2, eviction="lru")
    recs = [record(p, f"m{i}/1") for i, p in enumerate(packages)]
    for r in recs[:2]:
        manager.release((await manager.acquire(r))[0])
    manager.release((await manager.acquire(recs[0]))[0])  # m0 is now the most recent
    manager.release((await manager.acquire(recs[2]))[0])
    assert sorted(m.model_id for m in manager.models()) == ["m0/1", "m2/1"]


async def test_gdsf_keeps_a_model_used_often_over_more_recent_ones_used_once(make_manager, packages) -> None:
    manager = make_manager(max_models=2)  # the default policy: GDSF
    recs = [record(p, f"m{i}/1") for i, p in enumerate(packages)]
    # m0 is used often: 1,000 uses keep it while the others' measured load times (cost) stay under ~500 times its
    # own (the models are alike in size; a busy machine makes their load times vary by far more than 30 uses cover)...
    for _ in range(1_000):
        manager.release((await manager.acquire(recs[0]))[0])
    for r in recs[1:]:  # ...then three others once each: LRU would keep only the last two
        manager.release((await manager.acquire(r))[0])
    assert sorted(m.model_id for m in manager.models()) == ["m0/1", "m3/1"]


async def test_a_burst_that_waited_for_a_load_is_one_use_and_later_requests_each_one_more(make_manager, packages) -> None:
    """The eviction policy counts the load as the one use of the requests that started it or waited for it; each
    request that finds the model loaded is one more (as the fleet simulator's workers count: bench/fleet_sim)."""
    manager = make_manager()
    rec = record(packages[0], "m0/1")
    for model, _ in await asyncio.gather(*(manager.acquire(rec) for _ in range(20))):
        manager.release(model)
    held, policy = manager.get("m0/1"), manager._eviction
    assert manager.loads_started == 1
    one_use = held.load_seconds / held.size_bytes  # GDSF: uses x load cost / size, over a clock still at 0
    assert policy.priority("m0/1") == pytest.approx(one_use)
    for _ in range(3):
        manager.release((await manager.acquire(rec))[0])
    assert policy.priority("m0/1") == pytest.approx(4 * one_use)


async def test_pinned_models_are_never_evicted(make_manager, packages) -> None:
    manager = make_manager(max_models=1)
    recs = [record(p, f"m{i}/1") for i, p in enumerate(packages)]
    await manager.load(recs[0], pin=True)
    for r in recs[1:]:
        await manager.load(r)
    ids = [m.model_id for m in manager.models()]
    assert "m0/1" in ids and ids[-1] == "m3/1"


async def test_lru_by_memory(make_manager, tmp_path) -> None:
    big = [write_package(tmp_path / f"big{i}", yolov8_like(seed=i, padding_bytes=24_000_000)) for i in range(3)]
    manager = make_manager(max_models=10, capacity_bytes=60_000_000)
    for i, pkg in enumerate(big):
        await manager.load(record(pkg, f"big{i}/1"))
        assert manager.total_bytes <= 60_000_000 or len(manager.models()) == 1
    assert all(m.size_bytes >= 20_000_000 for m in manager.models())
    assert [m.model_id for m in manager.models()][-1] == "big2/1"
    assert len(manager.models()) < 3


async def test_memory_pressure_evicts_down_to_the_newest(make_manager, packages) -> None:
    pressure = {"free": 0.9}
    manager = make_manager(max_models=10, memory_free_threshold=0.2, free_fraction=lambda: pressure["free"])
    for i, pkg in enumerate(packages[:3]):
        await manager.load(record(pkg, f"m{i}/1"))
    assert len(manager.models()) == 3
    pressure["free"] = 0.1
    await manager.load(record(packages[3], "m3/1"))
    assert [m.model_id for m in manager.models()] == ["m3/1"]


async def test_requests_for_loaded_models_flow_while_another_loads(make_manager, packages) -> None:
    manager = make_manager()
    ready = record(packages[0], "ready/1")
    await manager.load(ready)
    body = (packages[1] / "model.onnx").read_bytes()
    with artifact_server() as server:
        server.files["/slow.onnx"] = body
        server.delay_s = 1.5
        slow = record(packages[1], "slow/1", uri=server.url("/slow.onnx"))
        loading = asyncio.create_task(manager.acquire(slow))
        served = 0
        while not loading.done():
            model, _ = await manager.acquire(ready)
            manager.release(model)
            served += 1
            await asyncio.sleep(0.01)
        await loading
    assert served > 20  # the slow load never blocked the event loop


@pytest.mark.slow
async def test_eviction_really_frees_memory(make_manager, tmp_path) -> None:
    """200 load/evict cycles of a 16 MB model: RSS after the churn stays within 150 MB of RSS after 20."""
    pkgs = [write_package(tmp_path / f"c{i}", yolov8_like(seed=i, padding_bytes=16_000_000)) for i in range(2)]
    manager = make_manager(max_models=1)
    recs = [record(pkgs[i % 2], f"c{i}/1") for i in range(200)]
    process = psutil.Process()
    for i, rec in enumerate(recs):
        await manager.load(rec)
        if i == 19:
            await asyncio.sleep(0.05)
            gc.collect()
            baseline = process.memory_info().rss
    await asyncio.sleep(0.05)
    gc.collect()
    growth = process.memory_info().rss - baseline
    assert len(manager.models()) == 1
    assert growth < 150_000_000, f"RSS grew {growth / 1e6:.0f} MB over 180 load/evict cycles"


async def test_evicted_models_are_freed_without_waiting_for_the_garbage_collector(make_manager, packages) -> None:
    """Sessions hold native memory the cyclic GC does not see: an evicted model must be freed by
    reference counting alone, after its batch loop and run tasks have been used and cancelled."""
    manager = make_manager(max_models=1)
    first, _ = await manager.load(record(packages[0], "a/1"))
    size = first.record.spec.input
    for _ in range(3):  # through the batch loop: a run task, a cancelled loop task on close
        first.batcher.announce()
        await first.batcher.submit(np.zeros((3, size.height, size.width), np.float32))
    refs = [weakref.ref(first), weakref.ref(first.batcher), weakref.ref(first.session)]
    del first
    # Loading b/1 evicts a/1, which retires in the background.
    await _freed_by_refcount(refs, manager.load(record(packages[1], "b/1")))


async def _freed_by_refcount(refs: list[weakref.ref], evict) -> None:  # noqa: ANN001 - the awaitable that evicts
    """Await ``evict`` with the cyclic GC off; every referent must then go by reference counting alone."""
    gc.collect()
    gc.disable()
    try:
        await evict
        for _ in range(200):
            if all(ref() is None for ref in refs):
                break
            await asyncio.sleep(0.01)
        assert [ref() is None for ref in refs] == [True] * len(refs)
    finally:
        gc.enable()



class CountingSession:
    """An ONNX Runtime session that counts its runs."""

    def __init__(self, session) -> None:  # noqa: ANN001 - onnxruntime.InferenceSession
        self.session, self.runs = session, 0

    def run(self, *args: object) -> list[np.ndarray]:
        self.runs += 1
        return self.session.run(*args)


async def _batch(model) -> None:  # noqa: ANN001 - HeldModel
    spec = model.record.spec.input
    model.batcher.announce()
    result = await model.batcher.submit(np.zeros((3, spec.height, spec.width), np.float32))
    assert result.batch_size == 1 and result.outputs


async def _until(done, what: str, timeout_s: float = 10.0) -> None:  # noqa: ANN001 - a predicate
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not done():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.01)


async def _opened(model) -> None:  # noqa: ANN001
    await _until(lambda: not model.session.wants_batch_session, "the batch session was never opened")


@pytest.fixture
async def adaptive(tmp_path: Path, monkeypatch) -> AsyncIterator:
    """Managers with adaptive threads on a machine of 3 CPUs."""
    from services.model_worker import runtime

    monkeypatch.setattr(runtime, "usable_cpus", lambda: 3)
    pools = [ThreadPoolExecutor(2), ThreadPoolExecutor(3)]
    store = ArtifactStore(tmp_path / "cache", policy=ArtifactPolicy(roots=(tmp_path,)))
    managers: list[ModelManager] = []

    def make(**limits: object) -> ModelManager:
        managers.append(ModelManager(store, RuntimeOptions(execution_provider="cpu", adaptive_threads=True),
                                     ManagerLimits(**limits), *pools))
        return managers[-1]

    yield make
    for m in managers:
        await m.close()
    for pool in pools:
        pool.shutdown()


@pytest.mark.parametrize("setting,runs", [(0, 3), (2, 2)])  # 0: one per CPU; an explicit setting wins
async def test_the_first_batch_opens_a_one_thread_session_that_runs_the_next(adaptive, packages, setting: int,
                                                                             runs: int) -> None:
    manager = adaptive(concurrent_runs=setting)
    model, _ = await manager.acquire(record(packages[0], "m/1"))
    manager.release(model)
    assert model.batcher.concurrent_runs == runs
    assert model.session.wants_batch_session  # a cold start opens one session
    loaded = manager.total_bytes
    wide = model.session.session = CountingSession(model.session.session)
    await _batch(model)  # the first batch runs on the wide session and asks for the narrow one
    assert wide.runs == 1
    await _opened(model)
    assert manager.total_bytes == loaded + model.session.batch_bytes > loaded
    narrow = model.session.batch_session = CountingSession(model.session.batch_session)
    await _batch(model)
    assert (narrow.runs, wide.runs) == (1, 1)


WEIGHTS_MB = 4  # big enough that a session's size is its weights, above RSS noise
BIG_NEIGHBOUR = 4  # the second package's weights are this many times bigger


@pytest.fixture
def big_packages(tmp_path: Path) -> list[Path]:
    """Two packages: WEIGHTS_MB of weights, and BIG_NEIGHBOUR times that (evicting it frees more than a
    batch session of the first takes: one CI run measured that session at over 1.5x its weights)."""
    return [write_package(tmp_path / f"big{i}", yolov8_like(seed=i, padding_bytes=(WEIGHTS_MB << 20) * scale))
            for i, scale in enumerate((1, BIG_NEIGHBOUR))]


def _capacity(manager: ModelManager, spare: int) -> None:
    """Cap the manager's memory at what it holds now plus ``spare`` bytes (sizes come from RSS, measured
    by the manager itself: a second load of a package in one process can measure differently)."""
    manager.limits = dataclasses.replace(manager.limits, capacity_bytes=manager.total_bytes + spare)


async def test_a_batch_session_that_does_not_fit_evicts_the_least_recent_model(adaptive, big_packages) -> None:
    manager = adaptive()
    for i in (1, 0):
        m, _ = await manager.acquire(record(big_packages[i], f"m/{i}"))
        manager.release(m)
    # Both fit; a batch session of m/0 on top (its weights at least) does not, until m/1 goes.
    _capacity(manager, (WEIGHTS_MB << 20) - 1)
    hot = manager.get("m/0")
    await _batch(hot)
    await _opened(hot)
    assert [m.model_id for m in manager.models()] == ["m/0"] and hot.session.batch_session is not None


async def test_a_batch_session_that_cannot_fit_is_given_back(adaptive, big_packages) -> None:
    manager = adaptive()
    hot, _ = await manager.acquire(record(big_packages[0], "m/0"))
    manager.release(hot)
    _capacity(manager, (WEIGHTS_MB << 20) // 2)  # the model alone fits, with nothing to evict for more
    loaded = manager.total_bytes
    await _batch(hot)
    # Opened, found over capacity, dropped for good.
    await _until(lambda: hot.session.batch_source is None, "the batch session was never given back")
    assert hot.session.batch_session is None and manager.total_bytes == loaded
    assert hot.batcher.concurrent_runs == 3  # slots stay; batches run one at a time on the wide session
    await _batch(hot)
    assert manager.get("m/0") is hot


@pytest.mark.parametrize("batched", [False, True])
async def test_evicted_adaptive_models_are_freed_without_the_garbage_collector(adaptive, packages,
                                                                               batched: bool) -> None:
    """Never batched (the batcher still holds the hook that would open a batch session) or with its
    batch session open: an evicted model goes by reference counting alone."""
    manager = adaptive(max_models=1)
    first, _ = await manager.load(record(packages[0], "a/1"))
    refs = [weakref.ref(first), weakref.ref(first.batcher), weakref.ref(first.session)]
    if batched:
        await _batch(first)
        await _opened(first)
        refs.append(weakref.ref(first.session.batch_session))
    del first
    await _freed_by_refcount(refs, manager.load(record(packages[1], "b/1")))


async def test_the_published_state_lists_the_models_being_loaded(make_manager, packages) -> None:
    """Gateways send requests for a model that is loading somewhere to wait there, however long its load queue:
    the worker's heartbeat lists its loads in flight (``models_loading``) until each is done."""
    from services.model_worker.state import StatePublisher

    manager = make_manager()
    publisher = StatePublisher("w1", manager, 1.0)
    body = (packages[1] / "model.onnx").read_bytes()
    with artifact_server() as server:
        server.files["/slow.onnx"] = body
        server.delay_s = 0.5
        server.files["/copy.onnx"] = (packages[2] / "model.onnx").read_bytes()
        copy = asyncio.create_task(manager.load(record(packages[2], "copy/1", uri=server.url("/copy.onnx"))))
        loading = asyncio.create_task(manager.acquire(record(packages[1], "slow/1", uri=server.url("/slow.onnx"))))
        while not manager.loading:
            await asyncio.sleep(0.01)
        during = publisher.next()
        manager.release((await loading)[0])
        await copy
    after = publisher.next()
    # A request's load is listed; a LoadModel (the copies controller's further copy) is not: a request placing
    # the model elsewhere meanwhile is a further copy, not a second load of one placement.
    assert list(during.models_loading) == ["slow/1"] and not during.models
    assert not after.models_loading and {m.model_id for m in after.models} == {"slow/1", "copy/1"}


async def test_no_more_requests_wait_for_a_load_than_the_queue_takes(make_manager, packages) -> None:
    """Requests waiting for a model's load would all enter its queue at once when it lands, and those past the
    queue's limit would be refused then, after waiting for nothing: past that many, the worker refuses at once
    (RESOURCE_EXHAUSTED: the gateway places the model on another worker), and takes requests again once loaded."""
    from services.common.errors import ResourceExhausted

    manager = make_manager(max_queue=2)
    body = (packages[1] / "model.onnx").read_bytes()
    with artifact_server() as server:
        server.files["/slow.onnx"] = body
        server.delay_s = 0.5
        slow = record(packages[1], "slow/1", uri=server.url("/slow.onnx"))
        waiting = [asyncio.create_task(manager.acquire(slow)) for _ in range(2)]
        while manager._locks.waiting("slow/1") < 2:
            await asyncio.sleep(0.01)
        with pytest.raises(ResourceExhausted, match="loading on this worker"):
            await manager.acquire(slow)
        for model, _ in await asyncio.gather(*waiting):
            manager.release(model)
    model, cold = await manager.acquire(slow)  # loaded: the queue's own limit applies again
    manager.release(model)
    assert not cold and manager.loads_started == 1


async def test_a_queued_loads_demand_is_the_count_admission_bounds(make_manager, packages) -> None:
    """While a load waits for a load slot, the queue weighs it by the requests waiting for that model: the same
    count ``acquire``'s admission compares with the queue limit (``ModelLocks.waiting``)."""
    manager = make_manager(max_queue=8, load_slots=1)
    with artifact_server() as server:
        server.files["/slow.onnx"] = (packages[1] / "model.onnx").read_bytes()
        server.files["/next.onnx"] = (packages[2] / "model.onnx").read_bytes()
        server.delay_s = 0.5
        slow = record(packages[1], "slow/1", uri=server.url("/slow.onnx"))
        queued = record(packages[2], "next/1", uri=server.url("/next.onnx"))
        first = asyncio.create_task(manager.acquire(slow))  # takes the only slot
        while not manager.loads_in_progress:
            await asyncio.sleep(0.01)
        waiting = [asyncio.create_task(manager.acquire(queued)) for _ in range(3)]
        while not len(manager._load_queue) or manager._locks.waiting("next/1") < 3:
            await asyncio.sleep(0.01)
        (entry,) = manager._load_queue.waiting
        assert entry.demand() == manager._locks.waiting("next/1") == 3
        for model, _ in await asyncio.gather(first, *waiting):
            manager.release(model)
    assert manager.loads_started == 2


async def test_a_request_that_waited_for_the_load_counts_from_its_arrival(make_manager, packages) -> None:
    """The load meter's rate for the request that loaded the model: counted from when it arrived (before the load),
    not from the moment the model was made (after it), which read as a rate of thousands a second."""
    manager = make_manager()
    model, cold = await manager.acquire(record(packages[0], "m/1"))
    model.meter.sample()
    manager.release(model)
    assert cold and model.meter.rate <= 1 / model.load_seconds
