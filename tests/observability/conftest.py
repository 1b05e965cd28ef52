"""One observed fleet for the module: registry, two workers, a gateway and a video pipelines replica as
processes, their spans sent by the real OTLP exporter to a receiver on a loopback port, scraped every second
by a real Prometheus (with the fleet's alert rules loaded); traffic of every kind driven once through it."""

from __future__ import annotations

import base64
import io
import random
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import grpc
import httpx
import numpy as np
import pytest
from PIL import Image

from fleet.client import FleetClient, build_request
from fleet.v1 import gateway_pb2, pipelines_pb2, pipelines_pb2_grpc
from services.cache.embedded import delete_namespace
from services.demo.scenes import generate_scene
from services.demo.video import write_video
from services.local.processes import LocalFleet
from tests.artifact_server import ArtifactServer
from tests.conftest import PACKAGES, TEST_KEY, demo_models, write_catalog
from tests.observability.otlp import OtlpReceiver
from tests.observability.prometheus import Prometheus
from tests.workflows.definitions import one_step

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "fleet-alerts.yml"
DOCS = REPO / "docs" / "metrics.md"
CHURN_MODELS = 50
MAX_MODELS = 20  # FLEET_METRICS_MAX_MODELS for this fleet: below the number of models, so 'other' appears
CUDA_ONLY = re.compile(r"CUDA only")


def documented_families() -> dict[str, str]:
    """Metric family -> its table row, from docs/metrics.md."""
    rows = {}
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"^\| `((?:fleet|grpc)_[a-z0-9_]+)` \|", line):
            rows[m.group(1)] = line
    return rows


def jpeg(seed: int) -> bytes:
    return cv2.imencode(".jpg", generate_scene(seed).image[:, :, ::-1])[1].tobytes()


def corrupt_images(count: int, seed: int = 11) -> list[bytes]:
    """PNG and JPEG images with flipped bytes or cut short: past the header check, failing in the decoder."""
    rng = random.Random(seed)
    pixels = np.random.default_rng(seed).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    goods = []
    for fmt in ("PNG", "JPEG"):
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, fmt)
        goods.append(buf.getvalue())
    out = []
    for i in range(count):
        bad = bytearray(goods[i % 2])
        if (i // 2) % 2:
            bad = bad[: rng.randrange(len(bad) // 3, len(bad) - 8)]
        else:
            for _ in range(8):
                bad[rng.randrange(64, len(bad))] = rng.randrange(256)
        out.append(bytes(bad))
    return out


@dataclass
class Observed:
    fleet: LocalFleet
    prometheus: Prometheus
    otlp: OtlpReceiver
    traffic: dict[str, int] = field(default_factory=dict)

    def scrape(self, name: str) -> str:
        return httpx.get(f"http://127.0.0.1:{self.fleet.service(name).metrics_port}/metrics", timeout=10).text


def drive_traffic(fleet: LocalFleet) -> dict[str, int]:
    """Every kind of request the dashboard and the docs describe: successes on every task, cache hits,
    callers' mistakes, corrupt images, a stream, model management, and churn over many models."""
    counts = {"ok": 0, "failed": 0, "corrupt": 0}  # corrupt: images refused as undecodable
    images = [jpeg(9_200_000 + i) for i in range(4)]
    with FleetClient(fleet.gateway.address, TEST_KEY) as client:
        for round_ in range(3):
            for model in ("shapes-det/1", "shapes-seg/1", "shapes-det-v5/1", "shapes-detector"):
                client.infer(model, images[round_ % len(images)])
                counts["ok"] += 1
        for _ in range(3):  # identical requests: response-cache hits
            client.infer("shapes-det/1", images[0])
            counts["ok"] += 1
        for request in (build_request("shapes-det/1", b"\x00junk"), build_request("nope/1", images[0])):
            with pytest.raises(grpc.RpcError):
                client.stub.Infer(request, metadata=client.metadata, timeout=30)
            counts["failed"] += 1
        for image in corrupt_images(120):  # most fail to decode; a damaged JPEG may still decode (with warnings)
            try:
                client.stub.Infer(build_request("shapes-det/1", image), metadata=client.metadata, timeout=30)
                counts["ok"] += 1
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
                counts["corrupt"] += 1
        items = [gateway_pb2.InferStreamRequest(correlation_id=str(i), request=build_request(
            "shapes-seg/1", images[i % len(images)])) for i in range(8)]
        assert len(list(client.stub.InferStream(iter(items), metadata=client.metadata, timeout=60))) == 8
        client.stub.AddModel(gateway_pb2.AddModelRequest(model_id="shapes-det/1"), metadata=client.metadata,
                             timeout=60)
        client.describe_models()
        with httpx.Client(base_url=fleet.gateway.http_url, timeout=60) as http:  # the HTTP API too
            b64 = base64.b64encode(images[2]).decode()
            for _ in range(2):  # a series is born at its first request: a later one makes a rate to see
                assert http.post(f"/shapes-det/1?api_key={TEST_KEY}", content=b64).status_code == 200
                time.sleep(2.5)
            assert http.post("/infer/object_detection", json={"model_id": "shapes-det/1", "api_key": TEST_KEY,
                                                              "image": {"type": "base64", "value": b64}}).is_success
            bad = http.post(f"/shapes-det/1?api_key={TEST_KEY}", content=base64.b64encode(b"\x00junk").decode())
            assert bad.status_code == 400
            assert http.post("/workflows/run", json={"api_key": TEST_KEY, "specification": one_step(),
                                                     "inputs": {"image": {"type": "base64", "value": b64}}}).is_success
            counts["ok"], counts["failed"] = counts["ok"] + 4, counts["failed"] + 1  # the workflow: one inference
        for round_ in range(2):  # many models through workers holding 4 each: loads, cold starts, evictions
            for i in range(CHURN_MODELS):
                reply = client.infer(f"churn-{i:02d}/1", images[round_])
                assert reply.model_id == f"churn-{i:02d}/1"  # all share one package: never another's answer
                counts["ok"] += 1
    return counts


def drive_pipeline(fleet: LocalFleet) -> None:
    """One video pipeline through the pipelines replica, run to its file's end: frames read, processed, and
    dropped both for the rate (a 30 fps file taken at 10 fps) and from a one-result consume buffer."""
    metadata = (("authorization", f"Bearer {TEST_KEY}"),)
    request = pipelines_pb2.CreatePipelineRequest(model_id="shapes-det/1", max_fps=10, results_buffer_size=1,
                                                  sources=[pipelines_pb2.VideoSource(reference="clip.avi")])
    with grpc.insecure_channel(fleet.pipelines_processes[0].address) as channel:
        service = pipelines_pb2_grpc.PipelineServiceStub(channel)
        pipeline_id = service.CreatePipeline(request, metadata=metadata, timeout=60).pipeline.pipeline_id
        get = pipelines_pb2.GetPipelineRequest(pipeline_id=pipeline_id)
        deadline = time.monotonic() + 60
        while service.GetPipeline(get, metadata=metadata, timeout=10).pipeline.state != "finished":
            assert time.monotonic() < deadline, "the pipeline did not reach its file's end"
            time.sleep(0.5)
        service.TerminatePipeline(pipelines_pb2.TerminatePipelineRequest(pipeline_id=pipeline_id),
                                  metadata=metadata, timeout=30)


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Observed]:
    tmp = tmp_path_factory.mktemp("observed")
    churn = [{"id": f"churn-{i:02d}/1", "workspace": "demo", "package": str(PACKAGES / "shapes-cls")}
             for i in range(CHURN_MODELS)]
    catalog = write_catalog(tmp / "catalog.yaml", demo_models() + churn)
    videos = tmp / "videos"
    videos.mkdir()
    write_video(videos / "clip.avi", 45, fps=30)
    namespace = f"obs-{uuid.uuid4().hex[:10]}"
    otlp = OtlpReceiver().start()
    upstream = ArtifactServer().start()  # the registry's upstream model source: knows no model (404)
    fleet = LocalFleet(redis_url, catalog, workers=2, pipelines=1, video_roots=[videos], namespace=namespace,
                       state_dir=tmp / "run", env={
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "200", "FLEET_METRICS_MAX_MODELS": str(MAX_MODELS),
        "FLEET_GATEWAY_RESPONSE_CACHE_TTL_S": "300", "FLEET_GATEWAY_DEPENDENCY_CHECK_INTERVAL_S": "1",
        "FLEET_WORKER_DEPENDENCY_CHECK_INTERVAL_S": "1", "FLEET_REGISTRY_DEPENDENCY_CHECK_INTERVAL_S": "1",
        "FLEET_WORKER_MAX_ACTIVE_MODELS": "4", "FLEET_WORKER_INFERENCE_LOG_ENABLED": "false",
        "FLEET_REGISTRY_UPSTREAM_URL": upstream.url(""),
    })
    prometheus = None
    try:
        fleet.start()
        targets = {p.name.split("-")[0]: [] for p in fleet.processes}
        for p in fleet.processes:
            targets[p.name.split("-")[0]].append(f"127.0.0.1:{p.metrics_port}")
        prometheus = Prometheus(targets, [RULES]).start()
        prometheus.wait_scraped(len(fleet.processes))  # counters seen at 0 first, so the traffic shows as rates
        started = time.monotonic()
        traffic = drive_traffic(fleet)
        drive_pipeline(fleet)
        print(f"traffic {traffic} in {time.monotonic() - started:.1f}s")
        yield Observed(fleet, prometheus, otlp, traffic)
    finally:
        if prometheus is not None:
            prometheus.stop()
        fleet.stop()
        otlp.stop()
        upstream.stop()
        delete_namespace(redis_url, namespace)
