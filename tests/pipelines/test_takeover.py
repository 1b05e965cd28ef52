"""A pipelines replica dies (SIGKILL) or is drained (SIGTERM): another resumes its pipelines; gaps measured."""

from __future__ import annotations

import time

import pytest

from fleet.v1 import pipelines_pb2
from services.local.processes import LocalFleet
from services.local.results import ResultFollower
from tests.conftest import TEST_KEY
from tests.pipelines.client import auth, report, stub
from tests.pipelines.conftest import RtspServer, wait_for

pytestmark = pytest.mark.slow


class Follower(ResultFollower):
    """Every result of one pipeline as the replica at ``address`` delivers it, in a thread."""

    def __init__(self, address: str, pipeline_id: str) -> None:
        super().__init__(stub(address), auth(TEST_KEY), pipeline_id)

    def after(self, t: float) -> list:
        return [r for r in self.results if r.completed_at > t]

    def largest_gap(self, start: float, end: float) -> float:
        times = sorted(r.completed_at for r in self.results if start <= r.completed_at <= end)
        return max((b - a for a, b in zip(times, times[1:], strict=False)), default=float("inf"))


def create_on(address: str, url: str) -> str:
    request = pipelines_pb2.CreatePipelineRequest(model_id="shapes-det/1", max_fps=5,
                                                  sources=[pipelines_pb2.VideoSource(reference=url)])
    return stub(address).CreatePipeline(request, metadata=auth(TEST_KEY), timeout=30).pipeline.pipeline_id


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
