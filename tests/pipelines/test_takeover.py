"""A pipelines replica dies (SIGKILL) or is drained (SIGTERM): another resumes its pipelines; gaps measured.
Frames pushed to a replica that does not run the pipeline reach its owner, and the next one after a kill."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from fleet.v1 import pipelines_pb2
from services.local.processes import LocalFleet, ServiceProcess
from services.local.results import ResultFollower, handover, stamp_offset, stream_results
from tests.conftest import OTHER_KEY, TEST_KEY
from tests.pipelines.client import Camera, auth, frames_of, report, stub
from tests.pipelines.conftest import RtspServer, pipelines_fleet, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, redis_url: str, videos: Path) -> Iterator[LocalFleet]:
    """A fleet of this module's own: its tests kill, drain and restart the pipelines replicas."""
    with pipelines_fleet(tmp_path_factory, redis_url, videos) as local:
        yield local


class Follower(ResultFollower):
    """Every result of one pipeline as the replica at ``address`` delivers it, in a thread."""

    def __init__(self, address: str, pipeline_id: str) -> None:
        super().__init__(stub(address), auth(TEST_KEY), pipeline_id)

    def after(self, t: float) -> list:
        return [r for r in self.results if r.completed_at > t]


def handover_bound(source_interval_s: float, offset_s: float) -> float:
    """No frame the pipeline would have processed at 5 fps missing: one frame interval at 5 fps (0.2 s), plus one
    of the source's (the frame taken when one is due is the latest, captured up to a source interval before),
    plus half a source interval for the capture stamps' jitter (an interval between processed frames is a whole
    number of source intervals give or take the jitter: this counts it as the nearest whole number) and the
    offset between the two replicas' stamps of the same stream (``stamp_offset``: an interval across the
    switch runs from one's stamp to the other's). A frame missing at the switch makes the interval at least
    one 5 fps frame longer (0.4 s and more here); with break-before-make (the old owner stopping as the new
    one claims the lease) 0.9-2.0 s here, the new owner's connect to the RTSP source."""
    return 0.2 + source_interval_s + source_interval_s / 2 + offset_s


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
        time.sleep(3.0)  # a stretch run by one replica, to compare the handover with
        drained_at = time.time()
        second.terminate()  # SIGTERM: hands over, then exits
        assert second.proc.returncode == 0
        assert time.time() - drained_at < 10  # the drain is bounded (the grace period)
        wait_for(lambda: all(len(f.after(time.time() - 0.5)) for f in followers_new), 20)
        results = [stream_results(fleet.redis_url, fleet.namespace, pid) for pid in ids]
        handovers = [handover(rows, second.name, first.name, drained_at) for rows in results]
        offset = max(stamp_offset(rows, second.name, first.name, 0.1) for rows in results)
        steady = sorted(i for h in handovers for i in h.steady_s)
        bound = handover_bound(0.1, offset)  # the RTSP source: a 10 fps video
        print(f"handover on SIGTERM, in capture time: largest intervals between processed frames "
              f"{[round(h.gap_s, 3) for h in handovers]} s, bound {bound:.3f} s, at "
              f"{[(round(h.gap_at_s, 2), *h.gap_between) for h in handovers]} (stamp offset {offset:.3f} s; both "
              f"replicas wrote results for {[round(h.overlap_s, 2) for h in handovers]} s); before it, one replica: "
              f"intervals p50 {steady[len(steady) // 2]:.3f} p90 {steady[int(len(steady) * 0.9)]:.3f} "
              f"max {steady[-1]:.3f} s")
        assert max(h.gap_s for h in handovers) <= bound
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


class Pusher:
    """A client pushing JPEG frames at about 10 fps over one PushFrames stream, in a thread, until stopped."""

    def __init__(self, address: str, pipeline_id: str, jpegs: list[bytes]) -> None:
        self.acks: list[tuple[float, int]] = []  # (when, frame id)
        self.error: grpc.RpcError | None = None
        self.done = threading.Event()
        self.call = stub(address).PushFrames(self._frames(pipeline_id, jpegs), metadata=auth(TEST_KEY))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _frames(self, pipeline_id: str, jpegs: list[bytes]):  # noqa: ANN202
        i = 0
        while not self.done.is_set():
            yield pipelines_pb2.PushFramesRequest(pipeline_id=pipeline_id, source_id="0",
                                                 image=jpegs[i % len(jpegs)], captured_at=time.time())
            i += 1
            time.sleep(0.1)

    def _run(self) -> None:
        try:
            for ack in self.call:
                self.acks.append((time.time(), ack.frame_id))
        except grpc.RpcError as exc:
            self.error = exc

    def stop(self) -> None:
        self.done.set()
        self.thread.join(30)


def alive_replicas(fleet: LocalFleet) -> list[ServiceProcess]:
    """Both replicas, the one an earlier test stopped started again."""
    for replica in list(fleet.pipelines_processes):
        if not replica.alive():
            fleet.restart(replica.name)
    return fleet.pipelines_processes


def test_frames_pushed_to_another_replica_reach_the_owner_and_survive_its_death(fleet: LocalFleet,
                                                                                videos: Path) -> None:
    """Push to the replica that does not run the pipeline: forwarded to the owner; the owner killed, the same
    stream goes on; the replica pushed to drained, the stream ends with UNAVAILABLE and a new one works."""
    owner, other = alive_replicas(fleet)
    request = pipelines_pb2.CreatePipelineRequest(model_id="shapes-det/1", max_fps=30, results_buffer_size=500,
                                                  sources=[pipelines_pb2.VideoSource(reference="push://phone")])
    pid = stub(owner.address).CreatePipeline(request, metadata=auth(TEST_KEY), timeout=30).pipeline.pipeline_id
    jpegs = [cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR))[1].tobytes()
             for f in frames_of(videos / "clip.avi")[:10]]
    follower = Follower(other.address, pid)
    pusher = Pusher(other.address, pid, jpegs)  # the replica that does not run it: it forwards to the owner
    camera: Camera | None = None
    try:
        assert report(stub(other.address), TEST_KEY, pid)["owner"] == owner.name
        foreign = pipelines_pb2.PushFramesRequest(pipeline_id=pid, source_id="0", image=jpegs[0])
        with pytest.raises(grpc.RpcError) as refused:  # another workspace's pipeline, through either replica
            list(stub(other.address).PushFrames(iter([foreign]), metadata=auth(OTHER_KEY), timeout=30))
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
        wait_for(lambda: len(follower.results) >= 10, 30)
        assert pusher.error is None and all(not r.error and r.outputs_json for r in follower.results)
        killed_at = time.time()
        owner.kill()  # SIGKILL mid-stream: the lease expires (2 s), the survivor takes the pipeline over
        wait_for(lambda: len(follower.after(killed_at + 0.05)) >= 10, 30)
        assert pusher.error is None, pusher.error
        assert report(stub(other.address), TEST_KEY, pid)["owner"] == other.name
        resumed = min(r.completed_at for r in follower.after(killed_at + 0.05))
        print(f"\npushed frames through the other replica: results again {resumed - killed_at:.2f} s after the "
              "owner's SIGKILL (lease ttl 2 s), same stream")
        pusher.stop()
        assert pusher.error is None, pusher.error  # the client's one stream went on and ended OK
        assert pusher.acks and pusher.acks[-1][0] > resumed

        # SIGTERM the replica a camera pushes to (the owner now): the pipeline goes to the other replica at once,
        # the camera's stream ends with UNAVAILABLE and it pushes again to the other replica, the frames not
        # acknowledged first: no frame goes missing across the switch, in capture time.
        fresh = fleet.restart(owner.name)
        camera = Camera([other.address, fresh.address], TEST_KEY, pid, jpegs)
        wait_for(lambda: len(camera.acks) >= 25, 30)  # a stretch run by one replica, to compare the handover with
        drained_at = time.time()
        other.terminate()
        assert other.proc.returncode == 0
        wait_for(lambda: len([a for a in camera.acks if a[0] > drained_at]) >= 10, 30)
        camera.stop()
        assert camera.errors == [grpc.StatusCode.UNAVAILABLE] and camera.error is None, (camera.errors, camera.error)
        assert report(stub(fresh.address), TEST_KEY, pid)["owner"] == fresh.name
        rows = stream_results(fleet.redis_url, fleet.namespace, pid)
        h = handover(rows, other.name, fresh.name, drained_at)
        # A 10 fps camera under max_fps 30: every frame is processed, so none may be missing at all (the next one a
        # camera interval later, counted to the nearest whole interval), stricter than the 5 fps goal.
        bound = 0.1 + 0.1 / 2 + stamp_offset(rows, other.name, fresh.name, 0.1)
        print(f"pushed frames, handover on SIGTERM: largest interval between processed frames in capture time "
              f"{h.gap_s:.3f} s (bound {bound:.3f} s, at {h.gap_at_s:.2f} s {h.gap_between}); before it, one replica: max {max(h.steady_s):.3f} s")
        assert h.gap_s <= bound
    finally:
        pusher.stop()
        if camera is not None:
            camera.stop()
        follower.stop()
        alive = next(p for p in fleet.pipelines_processes if p.alive())
        stub(alive.address).TerminatePipeline(pipelines_pb2.TerminatePipelineRequest(pipeline_id=pid),
                                              metadata=auth(TEST_KEY), timeout=10)
        alive_replicas(fleet)
