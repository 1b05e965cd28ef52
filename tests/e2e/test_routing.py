"""Fleet routing with real processes: load spreads over copies of a hot model, a cold model stays on one
worker, workers SIGKILLed or SIGTERMed under load fail no request.

Timing on this shared two-core machine varies a lot: bounds are generous, conditions are polled with
deadlines, and the measured figures are printed.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import grpc
import pytest

from fleet.client import build_request
from fleet.v1 import gateway_pb2, gateway_pb2_grpc
from services.demo.scenes import generate_scene
from services.local.processes import LocalFleet
from tests.conftest import TEST_KEY, demo_models, write_catalog
from tests.e2e.probes import metric

pytestmark = pytest.mark.slow

HOT, COLD = "shapes-det/1", "shapes-cls/1"
IMAGE = cv2.imencode(".jpg", generate_scene(9_300_000).image[:, :, ::-1])[1].tobytes()
METADATA = (("authorization", f"Bearer {TEST_KEY}"),)
FAST = {  # heartbeats and decisions every half second, so the test takes seconds rather than minutes
    "FLEET_WORKER_HEARTBEAT_INTERVAL_S": "0.5",
    "FLEET_WORKER_ORT_INTRA_OP_THREADS": "1",
    "FLEET_WORKER_CPU_THREADS": "1",
    "FLEET_GATEWAY_PLACEMENT_REFRESH_S": "0.5",
    "FLEET_GATEWAY_COPY_WINDOW_S": "1.5",
    "FLEET_GATEWAY_COPY_LOAD_THRESHOLD": "2",
    "FLEET_GATEWAY_MAX_COPIES": "3",
}


@pytest.fixture
def fleet_of(tmp_path: Path, redis_url: str, namespace: str) -> Iterator:
    started: list[LocalFleet] = []

    def start(workers: int, gateways: int = 1, **env: str) -> LocalFleet:
        catalog = write_catalog(tmp_path / "catalog.yaml", demo_models())
        env = {**FAST, **env}
        # The workers summarise their load over the windows the gateways decide on.
        env["FLEET_WORKER_LOAD_WINDOW_S"] = env["FLEET_GATEWAY_COPY_WINDOW_S"]
        env.setdefault("FLEET_WORKER_LOAD_HISTORY_S", env.get("FLEET_GATEWAY_COPY_RELEASE_WINDOW_S", "60"))
        local = LocalFleet(redis_url, catalog, workers=workers, gateways=gateways, namespace=namespace,
                           state_dir=tmp_path / "run", env=env)
        started.append(local)
        return local.start()

    yield start
    for local in started:
        local.stop()


@dataclass
class Load:
    """Closed-loop callers of one model through the gateway; every answer and failure, timed."""

    stub: gateway_pb2_grpc.GatewayServiceStub
    model_id: str
    callers: int
    timeout_s: float = 30.0
    served: list[tuple[float, str]] = field(default_factory=list)  # (when it was sent, worker id)
    failures: list[str] = field(default_factory=list)
    stopping: bool = False

    async def caller(self) -> None:
        while not self.stopping:
            sent = time.monotonic()
            try:
                reply = await self.stub.Infer(build_request(self.model_id, IMAGE), metadata=METADATA,
                                              timeout=self.timeout_s)
            except grpc.aio.AioRpcError as exc:
                self.failures.append(f"{exc.code().name}: {exc.details()}")
                continue
            self.served.append((sent, reply.worker_id))

    def second_worker_at(self, since: float) -> float | None:
        """When a request sent after ``since`` was first served by a second worker."""
        seen = set()
        for sent, worker_id in sorted(self.served):
            if sent >= since:
                seen.add(worker_id)
                if len(seen) >= 2:
                    return sent
        return None

    def share(self, since: float, until: float = float("inf")) -> Counter[str]:
        return Counter(w for t, w in self.served if since <= t < until)

    async def run(self) -> asyncio.Task:
        return asyncio.gather(*(self.caller() for _ in range(self.callers)))


async def _poll(check, timeout_s: float, interval_s: float = 0.2):  # noqa: ANN001, ANN202
    """``check()``'s first true value within ``timeout_s`` (or its last value)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if result := check():
            return result
        await asyncio.sleep(interval_s)
    return check()


async def test_a_hot_model_spreads_over_workers_and_a_cold_one_stays_on_one(fleet_of) -> None:  # noqa: ANN001
    local = fleet_of(3, FLEET_GATEWAY_COPY_RELEASE_WINDOW_S="2")
    async with grpc.aio.insecure_channel(local.gateway.address) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        hot, cold = Load(stub, HOT, callers=16), Load(stub, COLD, callers=1)
        await stub.Infer(build_request(HOT, IMAGE), metadata=METADATA, timeout=60)  # first copy placed
        started = time.monotonic()
        running = [await hot.run(), await cold.run()]
        spread_at = await _poll(lambda: hot.second_worker_at(started), timeout_s=10.0)
        assert spread_at, f"one worker served everything for 10 s: {hot.share(started)}"
        await asyncio.sleep(8.0)
        window_end = time.monotonic()
        described = await stub.DescribeModels(gateway_pb2.DescribeModelsRequest(), metadata=METADATA, timeout=30)
        copies_gauge = metric(local.gateway, "fleet_gateway_model_copies", model_id=HOT)
        hot.stopping = cold.stopping = True
        await asyncio.gather(*running)

        async def hot_copies() -> int:
            reply = await stub.DescribeModels(gateway_pb2.DescribeModelsRequest(), metadata=METADATA, timeout=30)
            return sum(len(p.copies) for p in reply.placements if p.model_id == HOT)

        idle = time.monotonic()
        released = await _poll_async(lambda n: n == 1, hot_copies, 30)  # gone cold: surplus copies released
        print(f"back to one copy {time.monotonic() - idle:.1f} s after the load stopped" if released else "")
        assert released
    after = hot.share(spread_at, window_end)
    total = sum(after.values())
    print(f"\nsecond worker serving after {spread_at - started:.1f} s; then {total} requests: {dict(after)}; "
          f"cold model: {dict(cold.share(started))}")
    assert not hot.failures and not cold.failures
    assert len(after) >= 2 and max(after.values()) <= 0.6 * total
    assert len(cold.share(started)) == 1  # a cold model lands on one worker
    placements = {p.model_id: p for p in described.placements}
    assert len(placements[HOT].copies) >= 2 and len(placements[COLD].copies) == 1
    assert placements[HOT].max_copies == 3 and all(c.worker_id.startswith("worker-") for c in placements[HOT].copies)
    assert any(c.requests_per_second > 0 for c in placements[HOT].copies)
    assert "127.0.0.1" not in str(described)  # workers are named by id, never by address
    # The copies came from the copies controller (new_copy) or from routing, placing requests on a worker with
    # room when the holders' queues were full (placement; the first request placed the first copy).
    assert sum(metric(local.gateway, "fleet_gateway_routing_decisions_total", decision=d)
               for d in ("new_copy", "placement")) >= 2
    assert metric(local.gateway, "fleet_gateway_routing_decisions_total", decision="released_copy") >= 1
    assert metric(local.gateway, "fleet_gateway_routing_decisions_total", decision="holder") > total / 2
    assert copies_gauge >= 2


SLOW, QUICK = "shapes-seg/1", "shapes-cls/1"  # a segmenter and a classifier: slow and fast per request


@pytest.mark.parametrize("run", [1, 2])
async def test_a_worker_busy_with_two_models_gets_help_from_idle_workers(fleet_of, run: int) -> None:  # noqa: ANN001
    """Both models first loaded on worker 0, then two more workers join; eight callers over the two models with
    the default copy threshold (4 per copy): neither model alone is clearly above it, worker 0 is, with both.
    In every run a copy goes to an idle worker and takes a share of worker 0's heaviest traffic."""
    local = fleet_of(1, FLEET_GATEWAY_COPY_LOAD_THRESHOLD="4")
    async with grpc.aio.insecure_channel(local.gateway.address) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        for model_id in (SLOW, QUICK):
            await stub.Infer(build_request(model_id, IMAGE), metadata=METADATA, timeout=60)
        joined = [local.start_worker(i) for i in (1, 2)]
        for process in joined:
            await asyncio.to_thread(process.wait_ready, 60)
        assert await _poll_async(lambda n: n == 3, lambda: _workers_known(stub), 20)
        slow, quick = Load(stub, SLOW, callers=4), Load(stub, QUICK, callers=4)
        placed_before = metric(local.gateway, "fleet_gateway_routing_decisions_total", decision="placement")
        started = time.monotonic()
        running = [await slow.run(), await quick.run()]
        await asyncio.sleep(15)
        ended = time.monotonic()
        slow.stopping = quick.stopping = True
        await asyncio.gather(*running)
    late_slow, late_quick = slow.share(ended - 5, ended), quick.share(ended - 5, ended)
    # A copy elsewhere comes from the copies controller (relief for a saturated worker: new_copy) or from routing
    # itself, when worker 0's queue for a model is full and a request is placed on a worker with room (placement).
    by_controller, by_routing = (metric(local.gateway, "fleet_gateway_routing_decisions_total", decision=d)
                                 for d in ("new_copy", "placement"))
    by_routing -= placed_before  # (the first two requests placed both models on worker 0)
    print(f"\nrun {run}: whole load: slow {dict(slow.share(started))}, quick {dict(quick.share(started))}; "
          f"last 5 s: slow {dict(late_slow)}, quick {dict(late_quick)}; copies placed by the controller "
          f"{by_controller:.0f}, requests placed by routing {by_routing:.0f}")
    assert not slow.failures and not quick.failures
    assert by_controller + by_routing >= 1
    # The model loading worker 0 most (the slow one: its requests sit there longest) is served elsewhere too.
    elsewhere = sum(n for w, n in late_slow.items() if w != "worker-0")
    assert elsewhere >= 0.25 * sum(late_slow.values()) > 0, late_slow


async def test_add_model_keeps_copies_and_describe_models_shows_them(fleet_of) -> None:  # noqa: ANN001
    local = fleet_of(3, FLEET_GATEWAY_COPY_RELEASE_WINDOW_S="1", FLEET_GATEWAY_COPY_RELEASE_THRESHOLD="100",
                     FLEET_GATEWAY_COPY_LOAD_THRESHOLD="1000")
    async with grpc.aio.insecure_channel(local.gateway.address) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        added = await stub.AddModel(gateway_pb2.AddModelRequest(model_id="shapes-detector", copies=2),
                                    metadata=METADATA, timeout=60)
        assert added.model.model_id == HOT and len(set(added.worker_ids)) == 2
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.AddModel(gateway_pb2.AddModelRequest(model_id=HOT, copies=4), metadata=METADATA, timeout=60)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "at most 3" in err.value.details()

        async def copies() -> set[str]:
            reply = await stub.DescribeModels(gateway_pb2.DescribeModelsRequest(), metadata=METADATA, timeout=30)
            return {c.worker_id for p in reply.placements if p.model_id == HOT for c in p.copies}

        assert await _poll_async(lambda s: s == set(added.worker_ids), copies, 10)
        # The model is idle and release is eager here, but two copies were asked for: both stay. (On a loaded
        # machine a heartbeat may come late: the floor places a stand-in elsewhere meanwhile, released as the
        # newest copy once the late one is back, so the copies AddModel reported are where they were.)
        await asyncio.sleep(3)
        assert await _poll_async(lambda s: s == set(added.worker_ids), copies, 15), await copies()
        # A holder goes away: the floor places a copy on the third worker.
        gone = local.service(added.worker_ids[0])
        gone.proc.send_signal(signal.SIGKILL)
        gone.proc.wait()
        third = ({w.name for w in local.worker_processes} - set(added.worker_ids)).pop()
        assert await _poll_async(lambda s: s == {added.worker_ids[1], third}, copies, 20)
        removed = await stub.RemoveModel(gateway_pb2.RemoveModelRequest(model_id=HOT), metadata=METADATA, timeout=60)
        assert set(removed.worker_ids) == {added.worker_ids[1], third}
        await asyncio.sleep(2)
        assert await copies() == set()  # removed for good: no floor brings it back


PAUSE_S = 4  # eight heartbeat intervals of FAST


async def test_a_paused_holder_gets_no_stand_in_and_a_killed_one_fails_over_at_once(fleet_of) -> None:  # noqa: ANN001
    """A holder SIGSTOPped for eight heartbeat intervals (its record expires after three) and resumed: its copy
    still counts for the floor, so no stand-in is placed (the grace). A holder SIGKILLed under load: requests
    reaching it fail over at once, none fails, and the floor places a copy on the third worker well within the
    grace (a worker a call found unreachable gets none)."""
    grace_s = 30.0
    local = fleet_of(3, FLEET_GATEWAY_COPY_RELEASE_WINDOW_S="1", FLEET_GATEWAY_COPY_RELEASE_THRESHOLD="100",
                     FLEET_GATEWAY_COPY_LOAD_THRESHOLD="1000", FLEET_GATEWAY_HEARTBEAT_GRACE_S=str(grace_s))
    gateway = local.gateway
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        assert await _poll_async(lambda n: n == 3, lambda: _workers_known(stub), 30)
        added = await stub.AddModel(gateway_pb2.AddModelRequest(model_id=HOT, copies=2), metadata=METADATA,
                                    timeout=60)
        holders = set(added.worker_ids)
        assert len(holders) == 2
        assert await _poll(lambda: metric(gateway, "fleet_gateway_model_copies") == 2, 15)  # by heartbeat
        placed = metric(gateway, "fleet_gateway_routing_decisions_total", decision="new_copy")

        paused = local.service(added.worker_ids[0])
        paused.proc.send_signal(signal.SIGSTOP)
        late_seen = 0.0
        try:
            for _ in range(PAUSE_S * 10):
                await asyncio.sleep(0.1)
                late_seen = max(late_seen, metric(gateway, "fleet_gateway_workers", state="late"))
        finally:
            paused.proc.send_signal(signal.SIGCONT)
        assert late_seen == 1  # its record did expire: the grace, not luck, kept its copy
        assert await _poll(lambda: metric(gateway, "fleet_gateway_workers", state="healthy") == 3, 5)
        await asyncio.sleep(3)
        assert metric(gateway, "fleet_gateway_routing_decisions_total", decision="new_copy") == placed
        assert metric(gateway, "fleet_gateway_model_copies") == 2

        load = Load(stub, HOT, callers=8, timeout_s=10.0)
        running = await load.run()
        await asyncio.sleep(2)
        killed = local.service(added.worker_ids[1])
        killed.proc.send_signal(signal.SIGKILL)
        killed.proc.wait()
        died = time.monotonic()
        third = ({w.name for w in local.worker_processes} - holders).pop()
        replaced = await _poll(lambda: third in {w for _, w in load.served}, 15)
        took = time.monotonic() - died
        # Its calls failed: out of rotation, no grace: it leaves the view when its record expires (1.5 s).
        left = await _poll_async(lambda n: n == 2, lambda: _workers_known(stub), grace_s / 3)
        assert metric(gateway, "fleet_gateway_workers", state="late") == 0
        load.stopping = True
        await running
    print(f"\npaused holder: late, no stand-in; killed holder: {len(load.served)} requests, "
          f"{len(load.failures)} failed, a copy on the third worker serving {took:.1f} s after the kill")
    assert not load.failures, load.failures[:5]
    assert replaced and took < grace_s / 2 and left


async def test_gateway_replicas_place_a_cold_model_on_the_same_worker(fleet_of) -> None:  # noqa: ANN001
    local = fleet_of(3, gateways=2)
    second = local.gateway_processes[1]
    async with grpc.aio.insecure_channel(local.gateway.address) as one, \
            grpc.aio.insecure_channel(second.address) as two:
        stubs = [gateway_pb2_grpc.GatewayServiceStub(c) for c in (one, two)]
        for stub in stubs:  # both know every worker before the first request
            assert await _poll_async(lambda n: n == 3, lambda s=stub: _workers_known(s), 20)
        # First requests for a model nobody holds, through both replicas at once.
        replies = await asyncio.gather(*(stub.Infer(build_request("shapes-seg/1", IMAGE), metadata=METADATA,
                                                    timeout=60) for stub in stubs for _ in range(4)))
    served = Counter(r.worker_id for r in replies)
    print(f"\nfirst requests for a cold model through two gateways: {dict(served)}")
    assert len(served) == 1


async def _workers_known(stub: gateway_pb2_grpc.GatewayServiceStub) -> int:
    reply = await stub.GetServerInfo(gateway_pb2.GetServerInfoRequest(), metadata=METADATA, timeout=30)
    return len(reply.workers)


async def _poll_async(ok, read, timeout_s: float):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout_s
    value = await read()
    while not ok(value) and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        value = await read()
    return ok(value)


async def _two_copies_under_load(stub: gateway_pb2_grpc.GatewayServiceStub):  # noqa: ANN202
    """AddModel(copies=2) of the hot model, then eight callers for three seconds (the load keeps running)."""
    added = await stub.AddModel(gateway_pb2.AddModelRequest(model_id=HOT, copies=2), metadata=METADATA, timeout=60)
    load = Load(stub, HOT, callers=8)
    running = await load.run()
    await asyncio.sleep(3)
    return added, load, running


KILL_GAP_S = 10.0  # between the two kills, as in the run


async def test_sigkill_holders_under_load_fails_no_request(fleet_of) -> None:  # noqa: ANN001
    """Three runs on one fleet: two copies under eight callers (deadline 10 s), both holders SIGKILLed 10 s
    apart; the third worker takes over and not one request fails. The killed workers restart between runs."""
    local = fleet_of(3)
    async with grpc.aio.insecure_channel(local.gateway.address) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        for run in range(3):
            assert await _poll_async(lambda n: n == 3, lambda: _workers_known(stub), 30)
            added = await stub.AddModel(gateway_pb2.AddModelRequest(model_id=HOT, copies=2), metadata=METADATA,
                                        timeout=60)
            # The copy floor (two) kept from the run before may already have a copy on a restarted worker, and
            # the load left over may have placed one more: two of the holders are killed, whichever they are.
            victims = added.worker_ids[:2]
            load = Load(stub, HOT, callers=8, timeout_s=10.0)
            running = await load.run()
            await asyncio.sleep(2)
            killed = []
            for worker_id in victims:  # two holders, one after the other
                victim = local.service(worker_id)
                victim.proc.send_signal(signal.SIGKILL)
                victim.proc.wait()
                killed.append(time.monotonic())
                await asyncio.sleep(KILL_GAP_S)
            load.stopping = True
            await running
            survivor, = {w.name for w in local.worker_processes} - set(victims)
            late = load.share(killed[-1] + 2.0)
            print(f"\nrun {run + 1}: {len(load.served)} requests, {len(load.failures)} failed; by worker: "
                  f"{dict(load.share(0))}; retries so far: unreachable "
                  f"{metric(local.gateway, 'fleet_gateway_retries_total', reason='unreachable'):.0f}")
            assert not load.failures, (run, load.failures[:5])
            assert set(late) == {survivor} and sum(late.values()) > 0
            for worker_id in victims:
                await asyncio.to_thread(local.restart, worker_id)


async def test_sigterm_under_load_drains_without_failing_a_request(fleet_of) -> None:  # noqa: ANN001
    local = fleet_of(2, FLEET_WORKER_DRAIN_NOTICE_S="2")
    async with grpc.aio.insecure_channel(local.gateway.address) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        added, load, running = await _two_copies_under_load(stub)
        leaving = local.service(added.worker_ids[0])
        signalled = time.monotonic()
        leaving.signal_stop()
        code = await asyncio.to_thread(leaving.proc.wait, 30)
        exited = time.monotonic()
        await asyncio.sleep(1)
        load.stopping = True
        await running
    log = leaving.log_path.read_text()
    before = load.share(signalled - 3, signalled)
    # Once gateways have read the draining heartbeat (refresh 0.5 s), no new request goes there.
    late = load.share(signalled + 1.5)
    print(f"\n{len(load.served)} requests, {len(load.failures)} failed; before SIGTERM {dict(before)}; "
          f"from 1.5 s after it {dict(late)}; exited {exited - signalled:.1f} s after SIGTERM with code {code}")
    assert not load.failures, load.failures[:5]
    assert code == 0 and "draining: announced" in log and "worker stopped" in log
    assert before[leaving.name] > 0 and late[leaving.name] == 0
