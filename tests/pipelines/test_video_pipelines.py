"""Pipelines on real video through a real fleet: files, RTSP (TCP and UDP), pushed frames; rate, drops,
lifecycle, tenancy and bad sources."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import grpc
import pytest

from fleet.client import FleetClient
from fleet.v1 import pipelines_pb2
from services.local.processes import LocalFleet
from tests.conftest import OTHER_KEY, TEST_KEY
from tests.pipelines.client import auth, create, detections_of, frames_of, infer_frame, report, stub
from tests.pipelines.conftest import RtspServer, wait_for

pytestmark = pytest.mark.slow




def results_of(service, key: str, pipeline_id: str, until) -> list:  # noqa: ANN001
    """Subscribe to the pipeline's results until ``until(results)`` holds (or 30 s pass)."""
    out = []
    call = service.SubscribeResults(pipelines_pb2.PipelineRef(pipeline_id=pipeline_id), metadata=auth(key), timeout=30)
    for item in call:
        out.append(item)
        if until(out):
            call.cancel()
            break
    return out


def terminate(service, pipeline_id: str) -> None:  # noqa: ANN001
    service.TerminatePipeline(pipelines_pb2.PipelineRef(pipeline_id=pipeline_id), metadata=auth(TEST_KEY), timeout=10)


def test_file_results_equal_infer_and_max_fps_is_respected(fleet: LocalFleet, videos: Path) -> None:
    service = stub(fleet.pipelines_processes[0].address)
    frames = frames_of(videos / "clip.avi")  # 30 frames at 10 fps: 3 s
    started = time.monotonic()
    info = create(service, TEST_KEY, [str(videos / "clip.avi")], max_fps=5, buffer=100)
    state = wait_for(lambda: report(service, TEST_KEY, info.pipeline_id)["state"] == "finished", 30)
    assert state
    elapsed = time.monotonic() - started
    final = report(service, TEST_KEY, info.pipeline_id)
    import json  # noqa: PLC0415
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
