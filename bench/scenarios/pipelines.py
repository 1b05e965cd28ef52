"""Scenario: video pipelines. A 30 fps video file (synthetic scenes) read by 1, 4 and 8 pipelines at once
(max_fps 30, so frames are dropped only when processing falls behind) on one pipelines replica: frames/s
per pipeline and in total, capture-to-result latency p50/p99, the drop ratio. Then a replica holding two
pipelines is killed (SIGKILL): the gap until the other replica's first result is the takeover time (lease
TTL 3 s, the default). Then the killed replica is started again and the survivor drained (SIGTERM): the
handover gap is the largest interval, in capture time, between the frames either replica processed across
the switch (``services.local.results.handover``), beside the intervals one replica had just before."""

from __future__ import annotations

import time
from pathlib import Path

import grpc

from bench.config import BenchConfig
from bench.environment import BenchEnv
from bench.stats import latency_summary
from bench.workload import MODEL_ID
from fleet.v1 import pipelines_pb2, pipelines_pb2_grpc
from services.demo.video import write_video
from services.local.results import ResultFollower, handover, stream_results

FPS = 30.0
MEASURE_S = 8.0  # at most, a point's window: with the takeover and the handover the scenario fits its 60 s
TAKEOVER_S, HANDOVER_S = 15.0, 8.0  # planned: the lease TTL and a source's open; a replica's start and a drain


def counts(cfg: BenchConfig) -> tuple[int, ...]:
    return (1, 2) if cfg.smoke else (1, 4, 8)


def planned_s(cfg: BenchConfig) -> float:
    return len(counts(cfg)) * (cfg.warmup_s + _measure_s(cfg) + 2) + TAKEOVER_S + HANDOVER_S


def _measure_s(cfg: BenchConfig) -> float:
    return min(cfg.measure_s, MEASURE_S)


def _create(stub, metadata, video: Path, max_fps: float = FPS) -> str:  # noqa: ANN001
    request = pipelines_pb2.CreatePipelineRequest(model_id=MODEL_ID, max_fps=max_fps,
                                                  sources=[pipelines_pb2.VideoSource(reference=str(video))])
    return stub.CreatePipeline(request, metadata=metadata, timeout=30).pipeline.pipeline_id


def _frames(stub, metadata, pipeline_id: str) -> dict:  # noqa: ANN001
    import json  # noqa: PLC0415

    info = stub.GetPipeline(pipelines_pb2.GetPipelineRequest(pipeline_id=pipeline_id), metadata=metadata,
                            timeout=10).pipeline
    return json.loads(info.report_json).get("frames", {})


def _terminate(stub, metadata, pipeline_id: str) -> None:  # noqa: ANN001
    stub.TerminatePipeline(pipelines_pb2.TerminatePipelineRequest(pipeline_id=pipeline_id), metadata=metadata,
                           timeout=30)


def run(cfg: BenchConfig, env: BenchEnv, images: list[bytes]) -> dict:
    fleet = env.fleet
    videos = env.state_dir / "videos"
    videos.mkdir(exist_ok=True)
    # Longer than any window, and than the takeover and the handover (a file ends its pipeline).
    seconds = max(cfg.warmup_s + _measure_s(cfg) * 3 + 5, 30)
    video = write_video(videos / "bench.avi", int(seconds * FPS), fps=FPS, hold=5)
    fleet.video_roots = [videos]
    replicas = [fleet.start_pipelines(i, {"FLEET_PIPELINES_MAX_PIPELINES_PER_WORKSPACE": "16",
                                          "FLEET_PIPELINES_LOG_LEVEL": "WARNING"}) for i in range(2)]
    for replica in replicas:
        replica.wait_ready(fleet.ready_timeout_s)
    metadata = (("authorization", f"Bearer {env.api_key}"),)
    stub = pipelines_pb2_grpc.PipelineServiceStub(grpc.insecure_channel(replicas[0].address))
    points = [_point(cfg, stub, metadata, video, n) for n in counts(cfg)]
    takeover, ids = _takeover(replicas, metadata, video)
    sigterm = _handover(fleet, replicas, metadata, ids)
    for replica in fleet.pipelines_processes:
        replica.terminate()
    return {"points_by_pipelines": points, "takeover": takeover, "handover": sigterm, "source_fps": FPS}


def _point(cfg: BenchConfig, stub, metadata, video: Path, n: int) -> dict:  # noqa: ANN001
    ids = [_create(stub, metadata, video) for _ in range(n)]
    followers = [ResultFollower(stub, metadata, pid) for pid in ids]
    try:
        time.sleep(cfg.warmup_s + 1.0)  # the sources open and the model is warm
        start = time.time()
        before = [_frames(stub, metadata, pid) for pid in ids]
        time.sleep(_measure_s(cfg))
        after = [_frames(stub, metadata, pid) for pid in ids]
        end = time.time()
    finally:
        for f in followers:
            f.stop()
        for pid in ids:
            _terminate(stub, metadata, pid)
    window = end - start
    processed = [a.get("processed", 0) - b.get("processed", 0) for a, b in zip(after, before, strict=True)]
    read = sum(a.get("read", 0) - b.get("read", 0) for a, b in zip(after, before, strict=True))
    dropped = sum(a.get("dropped", 0) - b.get("dropped", 0) for a, b in zip(after, before, strict=True))
    delays = [r.completed_at - r.captured_at for f in followers for r in f.results if start <= r.completed_at <= end]
    return {"pipelines": n, "window_s": window, "total_fps": sum(processed) / window,
            "per_pipeline_fps": sum(processed) / window / n, "frames_read": read, "frames_dropped": dropped,
            "drop_ratio": dropped / read if read else 0.0, "latency_ms": latency_summary(delays)}


def _takeover(replicas, metadata, video: Path) -> tuple[dict, list[str]]:  # noqa: ANN001
    first, second = replicas
    owner = pipelines_pb2_grpc.PipelineServiceStub(grpc.insecure_channel(first.address))
    survivor = pipelines_pb2_grpc.PipelineServiceStub(grpc.insecure_channel(second.address))
    ids = [_create(owner, metadata, video, max_fps=5) for _ in range(2)]
    followers = [ResultFollower(survivor, metadata, pid) for pid in ids]
    deadline = time.time() + 30
    while time.time() < deadline and not all(len(f.results) >= 3 for f in followers):
        time.sleep(0.05)
    killed = time.time()
    first.kill()
    while time.time() < deadline + 30 and not all(any(r.completed_at > killed for r in f.results) for f in followers):
        time.sleep(0.05)
    gaps = []
    for f in followers:
        before = max((r.completed_at for r in f.results if r.completed_at <= killed), default=killed)
        resumed = min((r.completed_at for r in f.results if r.completed_at > killed), default=float("nan"))
        gaps.append(resumed - before)
    for f in followers:
        f.stop()
    return {"pipelines": len(ids), "lease_ttl_s": 3.0, "gaps_s": gaps, "max_gap_s": max(gaps)}, ids


def _handover(fleet, replicas, metadata, ids: list[str]) -> dict:  # noqa: ANN001
    """The survivor of ``_takeover`` runs ``ids``; the killed replica started again, the survivor is drained."""
    survivor, started = replicas[1], time.time()
    fresh = fleet.restart(replicas[0].name)
    time.sleep(max(0.0, 3.0 - (time.time() - started)))  # 3 s run by one replica, to compare the handover with
    drained = time.time()
    survivor.terminate()
    deadline = time.time() + 20
    while True:  # until the new owner has written results after the old one's last, for every pipeline
        results = [stream_results(fleet.redis_url, fleet.namespace, pid) for pid in ids]
        try:
            handovers = [handover(rows, survivor.name, fresh.name, drained) for rows in results]
            break
        except ValueError:  # max()/min() of nothing: not yet
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    stub = pipelines_pb2_grpc.PipelineServiceStub(grpc.insecure_channel(fresh.address))
    for pid in ids:
        _terminate(stub, metadata, pid)
    steady = sorted(i for h in handovers for i in h.steady_s)
    return {"pipelines": len(ids), "max_fps": 5, "gaps_s": [h.gap_s for h in handovers],
            "max_gap_s": max(h.gap_s for h in handovers), "overlap_s": [h.overlap_s for h in handovers],
            "steady_p50_s": steady[len(steady) // 2], "steady_max_s": steady[-1]}
