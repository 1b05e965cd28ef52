"""A pipelines replica dies (SIGKILL) or is drained (SIGTERM): another resumes its pipelines; gaps measured."""

from __future__ import annotations

import contextlib
import threading
import time

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from fleet.v1 import pipelines_pb2
from services.local.processes import LocalFleet
from tests.conftest import TEST_KEY
from tests.pipelines.client import auth, report, stub
from tests.pipelines.conftest import RtspServer, wait_for

pytestmark = pytest.mark.slow


class Follower:
    """Every result of one pipeline as a replica's subscription delivers it, in a thread."""

    def __init__(self, address: str, pipeline_id: str) -> None:
        self.results: list[pipelines_pb2.PipelineResult] = []
        self.call = stub(address).SubscribeResults(pipelines_pb2.SubscribeResultsRequest(pipeline_id=pipeline_id),
                                                   metadata=auth(TEST_KEY))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for item in self.call:
                self.results.append(item.result)
        except grpc.RpcError:
            pass

    def after(self, t: float) -> list:
        return [r for r in self.results if r.completed_at > t]

    def largest_gap(self, start: float, end: float) -> float:
        times = sorted(r.completed_at for r in self.results if start <= r.completed_at <= end)
        return max((b - a for a, b in zip(times, times[1:], strict=False)), default=float("inf"))

    def stop(self) -> None:
        self.call.cancel()
        self.thread.join(5)


def create_on(address: str, url: str) -> str:
    request = pipelines_pb2.CreatePipelineRequest(model_id="shapes-det/1", max_fps=5,
                                                  sources=[pipelines_pb2.VideoSource(reference=url)])
    return stub(address).CreatePipeline(request, metadata=auth(TEST_KEY), timeout=30).pipeline.pipeline_id


def registry_reads(fleet: LocalFleet) -> dict[str, float]:
    """The pipelines' record reads the registry processes have served so far, by method."""
    counts = {"GetPipelineRecord": 0.0, "ListPipelineRecords": 0.0}
    for process in fleet.registry_processes:
        text = httpx.get(f"http://127.0.0.1:{process.metrics_port}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "grpc_server_started_total" and sample.labels.get("grpc_method") in counts:
                    counts[sample.labels["grpc_method"]] += sample.value
    return counts


def test_renewals_read_redis_and_the_registry_only_on_a_change(fleet: LocalFleet, redis_url: str) -> None:
    """Lease renewals (every 0.5 s here) and claim rounds (every 0.2 s) of two replicas holding four pipelines
    read no pipeline record while nothing changes; a change made through one replica still reaches the owner
    within a renewal or two, and so does a terminate."""
    first, second = fleet.pipelines_processes
    ids = [create_on(replica.address, f"push://cam{i}") for i, replica in enumerate([first, second, first, second])]
    redis = Redis.from_url(redis_url)
    try:
        time.sleep(1.0)  # every replica has listed the new pipelines once (the generation moved)
        before = registry_reads(fleet)
        time.sleep(3.0)  # 6 renewals of 4 leases, 15 claim rounds per replica
        after = registry_reads(fleet)
        reads = {method: after[method] - before[method] for method in before}
        print(f"\nregistry reads during 6 renewals of 4 pipelines on 2 replicas: {reads}")
        assert reads == {"GetPipelineRecord": 0, "ListPipelineRecords": 0}
        # A pause asked of the other replica reaches the owner through the revision counter.
        stub(second.address).PausePipeline(pipelines_pb2.PausePipelineRequest(pipeline_id=ids[0]),
                                           metadata=auth(TEST_KEY), timeout=10)
        wait_for(lambda: report(stub(first.address), TEST_KEY, ids[0])["state"] == "paused", 3)
        # A terminate asked of the other replica: the owner stops the pipeline and frees its lease.
        lease = f"{fleet.namespace}:pipelines:lease:{ids[0]}"
        assert redis.get(lease) == first.name.encode()
        stub(second.address).TerminatePipeline(pipelines_pb2.TerminatePipelineRequest(pipeline_id=ids[0]),
                                               metadata=auth(TEST_KEY), timeout=10)
        wait_for(lambda: redis.get(lease) is None, 3)
    finally:
        for pid in ids:
            with contextlib.suppress(grpc.RpcError):
                stub(first.address).TerminatePipeline(pipelines_pb2.TerminatePipelineRequest(pipeline_id=pid),
                                                      metadata=auth(TEST_KEY), timeout=10)
        redis.close()


def test_sigkill_then_sigterm_hand_pipelines_over(fleet: LocalFleet, rtsp: RtspServer) -> None:
    first, second = fleet.pipelines_processes
    ids = [create_on(first.address, rtsp.url) for _ in range(3)]
    followers = [Follower(second.address, pid) for pid in ids]
    try:
        wait_for(lambda: all(len(f.results) >= 3 for f in followers), 30)
        killed_at = time.time()
        first.kill()  # SIGKILL: its leases expire (2 s here), then the survivor claims the pipelines
        wait_for(lambda: all(f.after(killed_at + 0.05) for f in followers), 20)
        gaps = []
        for f in followers:
            before = max(r.completed_at for r in f.results if r.completed_at <= killed_at)
            gaps.append(min(r.completed_at for r in f.after(killed_at + 0.05)) - before)
        print(f"\ntakeover after SIGKILL: gaps {[round(g, 2) for g in gaps]} s (lease ttl 2 s)")
        assert max(gaps) <= 10.0
        assert all(report(stub(second.address), TEST_KEY, pid)["owner"] == second.name for pid in ids)

        first = fleet.restart(first.name)  # a fresh replica to hand over to
        followers_new = [Follower(first.address, pid) for pid in ids]
        wait_for(lambda: all(len(f.results) >= 3 for f in followers_new), 30)
        drained_at = time.time()
        second.terminate()  # SIGTERM: hands over, then exits
        assert second.proc.returncode == 0
        assert time.time() - drained_at < 10  # the drain is bounded (the grace period)
        wait_for(lambda: all(len(f.after(time.time() - 0.5)) for f in followers_new), 20)
        end = time.time() + 1.0
        time.sleep(1.5)
        gaps = [f.largest_gap(drained_at - 0.5, end) for f in followers_new]
        print(f"handover on SIGTERM: largest gaps between results {[round(g, 3) for g in gaps]} s (5 fps: 0.2 s)")
        # One frame interval at 5 fps (0.23-0.24 s measured on a quiet run), plus slack for this shared machine,
        # where gaps of 0.4-0.5 s also occur without any handover.
        assert max(gaps) <= 0.2 + 0.3
        assert all(report(stub(first.address), TEST_KEY, pid)["owner"] == first.name for pid in ids)
        for f in followers_new:
            f.stop()
    finally:
        for f in followers:
            f.stop()
        for pid in ids:
            alive = next((p for p in fleet.pipelines_processes if p.alive()), None)
            if alive is not None:
                stub(alive.address).TerminatePipeline(pipelines_pb2.TerminatePipelineRequest(pipeline_id=pid),
                                                      metadata=auth(TEST_KEY), timeout=10)
