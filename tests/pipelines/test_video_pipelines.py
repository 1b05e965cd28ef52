"""Pipelines on real video through a real fleet: files, RTSP (TCP and UDP), pushed frames; rate, drops,
lifecycle, tenancy and bad sources."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import grpc
import numpy as np
import pytest

from fleet.client import FleetClient
from fleet.v1 import pipelines_pb2
from services.cache.embedded import free_port
from services.local.processes import LocalFleet
from tests.conftest import OTHER_KEY, TEST_KEY
from tests.pipelines.client import auth, create, detections_of, frames_of, infer_frame, report, stub
from tests.pipelines.conftest import RtspServer, wait_for
from tests.pipelines.mjpeg_server import MjpegServer

pytestmark = pytest.mark.slow




def results_of(service, key: str, pipeline_id: str, until) -> list:  # noqa: ANN001
    """Subscribe to the pipeline's results until ``until(results)`` holds (or 30 s pass)."""
    out = []
    call = service.SubscribeResults(pipelines_pb2.SubscribeResultsRequest(pipeline_id=pipeline_id), metadata=auth(key),
                                    timeout=30)
    for item in call:
        out.append(item.result)
        if until(out):
            call.cancel()
            break
    return out


def terminate(service, pipeline_id: str) -> None:  # noqa: ANN001
    service.TerminatePipeline(pipelines_pb2.TerminatePipelineRequest(pipeline_id=pipeline_id), metadata=auth(TEST_KEY),
                              timeout=10)


def test_file_results_equal_infer_and_max_fps_is_respected(fleet: LocalFleet, videos: Path) -> None:
    service = stub(fleet.pipelines_processes[0].address)
    frames = frames_of(videos / "clip.avi")  # 30 frames at 10 fps: 3 s
    started = time.monotonic()
    info = create(service, TEST_KEY, [str(videos / "clip.avi")], max_fps=5, buffer=100)
    state = wait_for(lambda: report(service, TEST_KEY, info.pipeline_id)["state"] == "finished", 30)
    assert state
    elapsed = time.monotonic() - started
    final = report(service, TEST_KEY, info.pipeline_id)
    import httpx  # noqa: PLC0415

    http = f"http://127.0.0.1:{fleet.pipelines_processes[0].http_port}"
    reply = httpx.request("GET", f"{http}/inference_pipelines/{info.pipeline_id}/consume",
                          content=json.dumps({"api_key": TEST_KEY, "count": 100}), timeout=10).json()
    outputs, metadata = reply["outputs"], reply["frames_metadata"]
    assert outputs and len(outputs) == len(metadata)
    # max_fps 5 on a 10 fps file: about half the frames, never more than 5 a second (+1 for the first).
    assert len(outputs) <= 5 * elapsed + 1, (len(outputs), elapsed)
    assert len(outputs) >= 10
    assert final["frames"]["read"] == 30
    assert final["frames"]["dropped"] >= 30 - len(outputs) - 1
    with FleetClient(fleet.gateway.address, TEST_KEY) as client:
        for output, meta in zip(outputs, metadata, strict=True):
            assert meta["source_id"] == "0"
            assert detections_of(output) == infer_frame(client, frames[meta["frame_id"]])
    terminate(service, info.pipeline_id)
    metrics = httpx.get(f"http://127.0.0.1:{fleet.pipelines_processes[0].metrics_port}/metrics", timeout=10).text
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in metrics.splitlines()
              if line.startswith("fleet_pipeline")}
    assert values["fleet_pipeline_frames_read_total"] >= 30
    assert values['fleet_pipeline_frames_processed_total{outcome="ok"}'] >= len(outputs)
    assert values['fleet_pipeline_frames_dropped_total{reason="rate"}'] >= 1
    assert values["fleet_pipeline_capture_to_result_seconds_count"] >= len(outputs)
    assert "fleet_pipelines_running" in values and "fleet_pipeline_source_reconnects_total" in values


def test_rtsp_over_tcp_and_udp_survives_the_camera_going_away(fleet: LocalFleet, rtsp: RtspServer) -> None:
    service = stub(fleet.pipelines_processes[0].address)
    request = pipelines_pb2.CreatePipelineRequest(model_id="shapes-det/1", max_fps=5, sources=[
        pipelines_pb2.VideoSource(source_id="tcp", reference=rtsp.url, rtsp_transport="tcp"),
        pipelines_pb2.VideoSource(source_id="udp", reference=rtsp.url, rtsp_transport="udp")])
    info = service.CreatePipeline(request, metadata=auth(TEST_KEY), timeout=30).pipeline
    try:
        seen = results_of(service, TEST_KEY, info.pipeline_id, lambda rs: {r.source_id for r in rs} == {"tcp", "udp"})
        assert all(r.outputs_json and not r.error for r in seen)
        rtsp.stop()  # the camera disappears
        gone = wait_for(lambda: (s := report(service, TEST_KEY, info.pipeline_id))["state"] == "reconnecting" and s, 20)
        assert {m["state"] for m in gone["sources_metadata"]} == {"reconnecting"}
        assert all(m["reconnects"] >= 1 and m["last_error"] for m in gone["sources_metadata"])
        assert any(u["event_type"] == "RECONNECTING" for u in gone["video_source_status_updates"])
        rtsp.start()  # and comes back on the same address
        back = results_of(service, TEST_KEY, info.pipeline_id, lambda rs: {r.source_id for r in rs} == {"tcp", "udp"})
        assert back
        wait_for(lambda: report(service, TEST_KEY, info.pipeline_id)["state"] == "running", 10)
    finally:
        terminate(service, info.pipeline_id)


def test_terminate_during_a_failing_connect_returns_promptly(fleet: LocalFleet) -> None:
    service = stub(fleet.pipelines_processes[0].address)
    closed = f"rtsp://127.0.0.1:{free_port()}/cam"  # nothing listens: connect refused, retried with backoff
    silent = socket.socket()  # accepts the connection and never answers: the connect hangs in FFmpeg
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    hanging = f"rtsp://127.0.0.1:{silent.getsockname()[1]}/cam"
    info = create(service, TEST_KEY, [closed, hanging])
    try:
        wait_for(lambda: report(service, TEST_KEY, info.pipeline_id)["frames"] is not None, 5)
        time.sleep(1.0)
        started = time.monotonic()
        terminate(service, info.pipeline_id)
        assert time.monotonic() - started < 3.0  # the terminate bound (2 s here), whatever the sources do
        with pytest.raises(grpc.RpcError) as err:
            report(service, TEST_KEY, info.pipeline_id)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        silent.close()


def test_pushed_frames_are_processed_and_acknowledged(fleet: LocalFleet, videos: Path) -> None:
    service = stub(fleet.pipelines_processes[0].address)
    info = create(service, TEST_KEY, ["push://phone"], max_fps=30, buffer=200)
    frames = frames_of(videos / "clip.avi")[:10]
    jpegs = [cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR))[1].tobytes() for f in frames]

    def pushes():  # noqa: ANN202
        for i, jpeg in enumerate(jpegs):
            yield pipelines_pb2.PushFramesRequest(pipeline_id=info.pipeline_id, source_id="0", image=jpeg,
                                                 captured_at=time.time())
            # The next frame only once this one is processed: a pushed source is live (latest frame wins), so
            # pushing faster than a loaded machine processes would drop frames, which this test is not about.
            wait_for(lambda i=i: report(service, TEST_KEY, info.pipeline_id)["frames"]["processed"] > i, 10)

    try:
        acks = [a.frame_id for a in service.PushFrames(pushes(), metadata=auth(TEST_KEY), timeout=30)]
        assert acks == list(range(10))
        done = wait_for(lambda: (r := report(service, TEST_KEY, info.pipeline_id))["frames"]["processed"] == 10 and r,
                        10)
        assert done["frames"]["read"] == 10
        with FleetClient(fleet.gateway.address, TEST_KEY) as client:
            expected = [sorted((d.class_name, round(d.x, 1), round(d.y, 1), round(d.width, 1), round(d.height, 1),
                                round(d.confidence, 3)) for d in client.infer("shapes-det/1", j).object_detection
                               .detections) for j in jpegs]
        import httpx  # noqa: PLC0415

        http = f"http://127.0.0.1:{fleet.pipelines_processes[0].http_port}"
        reply = httpx.request("GET", f"{http}/inference_pipelines/{info.pipeline_id}/consume",
                              headers={"Authorization": f"Bearer {TEST_KEY}"}, json={"count": 50}, timeout=10).json()
        got = {m["frame_id"]: detections_of(o) for o, m in zip(reply["outputs"], reply["frames_metadata"], strict=True)}
        assert got == dict(enumerate(expected))
    finally:
        terminate(service, info.pipeline_id)


def code_of(call) -> grpc.StatusCode:  # noqa: ANN001
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code()


def test_tenancy_limits_and_bad_sources_leave_no_pipeline(fleet: LocalFleet, videos: Path, tmp_path: Path) -> None:
    service = stub(fleet.pipelines_processes[0].address)
    clip = str(videos / "long.avi")
    info = create(service, TEST_KEY, [clip], max_fps=2)
    try:
        # Another workspace sees nothing of it and cannot touch it.
        assert info.pipeline_id not in service.ListPipelines(pipelines_pb2.ListPipelinesRequest(),
                                                             metadata=auth(OTHER_KEY)).pipeline_ids
        for method, message in ((service.GetPipeline, pipelines_pb2.GetPipelineRequest),
                                (service.PausePipeline, pipelines_pb2.PausePipelineRequest),
                                (service.TerminatePipeline, pipelines_pb2.TerminatePipelineRequest)):
            call = lambda m=method, r=message(pipeline_id=info.pipeline_id): m(r, metadata=auth(OTHER_KEY))  # noqa: E731
            assert code_of(call) == grpc.StatusCode.NOT_FOUND
        before = set(service.ListPipelines(pipelines_pb2.ListPipelinesRequest(), metadata=auth(TEST_KEY)).pipeline_ids)
        outside = tmp_path / "outside.avi"
        outside.write_bytes((videos / "clip.avi").read_bytes())
        refused = {
            "bad key": (lambda: create(service, "fk_not_a_key", [clip]), grpc.StatusCode.UNAUTHENTICATED),
            "no key": (lambda: service.ListPipelines(pipelines_pb2.ListPipelinesRequest()),
                       grpc.StatusCode.UNAUTHENTICATED),
            "outside the roots": (lambda: create(service, TEST_KEY, [f"file://{outside}"]),
                                  grpc.StatusCode.INVALID_ARGUMENT),
            "escaping the roots": (lambda: create(service, TEST_KEY, [str(videos / ".." / outside.name)]),
                                   grpc.StatusCode.INVALID_ARGUMENT),
            "not video": (lambda: create(service, TEST_KEY, [str(videos / "not-video.avi")]),
                          grpc.StatusCode.INVALID_ARGUMENT),
            "scheme": (lambda: create(service, TEST_KEY, ["ftp://127.0.0.1/cam"]), grpc.StatusCode.INVALID_ARGUMENT),
            "unknown model": (lambda: create(service, TEST_KEY, [clip], model_id="nope/1"), grpc.StatusCode.NOT_FOUND),
            "max_fps": (lambda: create(service, TEST_KEY, [clip], max_fps=1000), grpc.StatusCode.INVALID_ARGUMENT),
            "no source": (lambda: create(service, TEST_KEY, []), grpc.StatusCode.INVALID_ARGUMENT),
        }
        for why, (call, expected) in refused.items():
            assert code_of(call) == expected, why
        after = set(service.ListPipelines(pipelines_pb2.ListPipelinesRequest(), metadata=auth(TEST_KEY)).pipeline_ids)
        assert after == before  # no phantom pipeline from any refused call
        # An unreachable camera is accepted (cameras come and go) and reported while retried.
        unreachable = create(service, TEST_KEY, [f"rtsp://127.0.0.1:{free_port()}/cam"])
        state = wait_for(lambda: report(service, TEST_KEY, unreachable.pipeline_id)["state"] == "reconnecting", 10)
        assert state
        terminate(service, unreachable.pipeline_id)
        # The workspace limit (6 in these tests).
        made = [create(service, TEST_KEY, [clip], max_fps=1).pipeline_id for _ in range(6 - len(after))]
        assert code_of(lambda: create(service, TEST_KEY, [clip])) == grpc.StatusCode.RESOURCE_EXHAUSTED
        for pipeline_id in made:
            terminate(service, pipeline_id)
    finally:
        terminate(service, info.pipeline_id)


def test_pause_resume_and_sources_added_and_removed_while_running(fleet: LocalFleet, videos: Path) -> None:
    service = stub(fleet.pipelines_processes[1].address)  # any replica answers for any pipeline
    owner = stub(fleet.pipelines_processes[0].address)
    info = create(owner, TEST_KEY, [str(videos / "long.avi")], max_fps=5)
    try:
        results_of(owner, TEST_KEY, info.pipeline_id, lambda rs: len(rs) >= 2)
        paused = service.PausePipeline(pipelines_pb2.PausePipelineRequest(pipeline_id=info.pipeline_id),
                                       metadata=auth(TEST_KEY))
        assert paused.pipeline.state in ("paused", "running")
        wait_for(lambda: report(owner, TEST_KEY, info.pipeline_id)["state"] == "paused", 5)
        time.sleep(0.5)
        processed = report(owner, TEST_KEY, info.pipeline_id)["frames"]["processed"]
        time.sleep(1.0)
        assert report(owner, TEST_KEY, info.pipeline_id)["frames"]["processed"] == processed
        service.ResumePipeline(pipelines_pb2.ResumePipelineRequest(pipeline_id=info.pipeline_id), metadata=auth(TEST_KEY))
        wait_for(lambda: report(owner, TEST_KEY, info.pipeline_id)["frames"]["processed"] > processed, 10)
        added = service.AddSource(pipelines_pb2.AddSourceRequest(pipeline_id=info.pipeline_id, source=pipelines_pb2
                                  .VideoSource(source_id="second", reference=str(videos / "clip.avi"))),
                                  metadata=auth(TEST_KEY))
        assert [s.source_id for s in added.pipeline.sources] == ["0", "second"]
        results_of(owner, TEST_KEY, info.pipeline_id, lambda rs: any(r.source_id == "second" for r in rs))
        removed = owner.RemoveSource(pipelines_pb2.RemoveSourceRequest(pipeline_id=info.pipeline_id, source_id="0"),
                                     metadata=auth(TEST_KEY))
        assert [s.source_id for s in removed.pipeline.sources] == ["second"]
        assert [m["source_id"] for m in report(owner, TEST_KEY, info.pipeline_id)["sources_metadata"]] == ["second"]
    finally:
        terminate(service, info.pipeline_id)


def test_the_cli_drives_pipelines(fleet: LocalFleet, videos: Path) -> None:
    replica = fleet.pipelines_processes[0]

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "fleet.cli.main", "pipelines", *args, "--address",
                               replica.address, "--api-key", TEST_KEY], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    created = cli("create", str(videos / "long.avi"), "--model", "shapes-det/1", "--max-fps", "5")
    pipeline_id = created.split()[0]
    assert pipeline_id in cli("list").split()
    watched = cli("watch", pipeline_id, "--count", "2").splitlines()
    assert len(watched) == 2 and all(line.startswith("0 frame ") and "predictions" in line for line in watched)
    assert "source 0: running" in cli("status", pipeline_id)
    assert "terminated" in cli("terminate", pipeline_id)
    assert pipeline_id not in cli("list").split()


def test_a_slow_model_drops_old_frames_and_keeps_the_delay_bounded(fleet: LocalFleet, videos: Path) -> None:
    service = stub(fleet.pipelines_processes[0].address)
    info = create(service, TEST_KEY, [str(videos / "busy.avi")], model_id="slow/1", max_fps=30)  # 30 fps source
    try:
        results = results_of(service, TEST_KEY, info.pipeline_id, lambda rs: len(rs) >= 10)[2:]  # after the load
        state = report(service, TEST_KEY, info.pipeline_id)
        frames = state["frames"]
        assert all(not r.error for r in results), results[0].error
        delays = [r.completed_at - r.captured_at for r in results]
        print(f"\nslow model: capture-to-result {min(delays):.3f}..{max(delays):.3f} s; frames {frames}")
        # max_fps (30) is the source's rate: frames are dropped only because processing is slower.
        assert frames["dropped"] > 0 and frames["processed"] < frames["read"]
        # Latest frame wins: a result is never older than about one processing time plus one frame interval,
        # and the delay does not grow (queued frames would make it grow with every frame).
        assert max(delays) < 1.0
        assert max(delays[len(delays) // 2:]) <= max(delays[: len(delays) // 2]) + 0.3
        assert frames["read"] - frames["dropped"] - frames["processed"] - frames["errors"] in (0, 1, 2)
    finally:
        terminate(service, info.pipeline_id)


def test_http_mjpeg_and_http_video_sources(fleet: LocalFleet, videos: Path) -> None:
    service = stub(fleet.pipelines_processes[0].address)
    frames = frames_of(videos / "clip.avi")[::5][:6]  # six different scenes
    jpegs = [cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR))[1].tobytes() for f in frames]
    with MjpegServer(jpegs, videos / "long.avi") as camera:
        request = pipelines_pb2.CreatePipelineRequest(model_id="shapes-det/1", max_fps=5, sources=[
            pipelines_pb2.VideoSource(source_id="mjpeg", reference=f"{camera.url}/stream.mjpg"),
            pipelines_pb2.VideoSource(source_id="video", reference=f"{camera.url}/video.avi")])
        info = service.CreatePipeline(request, metadata=auth(TEST_KEY), timeout=30).pipeline
        try:
            results = results_of(service, TEST_KEY, info.pipeline_id,
                                 lambda rs: sum(r.source_id == "mjpeg" for r in rs) >= 4
                                 and any(r.source_id == "video" for r in rs))
        finally:
            terminate(service, info.pipeline_id)
        with FleetClient(fleet.gateway.address, TEST_KEY) as client:
            sent = [infer_frame(client, cv2.cvtColor(cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR),
                                                     cv2.COLOR_BGR2RGB)) for j in jpegs]

        def same(got: list[tuple], expected: list[tuple]) -> bool:
            # FFmpeg's JPEG decoder and libjpeg differ by a grey level here and there: the same objects, each
            # box within 2 px of its twin.
            return [g[0] for g in got] == [e[0] for e in expected] and all(
                min(max(abs(a - b) for a, b in zip(g[1:5], e[1:5], strict=True)) for e in expected if e[0] == g[0])
                <= 2.0 for g in got)

        mjpeg = [detections_of(json.loads(r.outputs_json)) for r in results if r.source_id == "mjpeg"]
        # Each result is Infer's answer on one of the frames the camera sent (a frame lost while FFmpeg probes
        # the stream shifts frame ids, so frames are matched by content).
        assert all(any(same(got, expected) for expected in sent) for got in mjpeg), (mjpeg, sent)
