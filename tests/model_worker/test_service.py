"""The worker over gRPC: bad input of every kind, management RPCs, the inference log."""

from __future__ import annotations

import json

import asyncio
import io
import struct
import uuid
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import cv2
import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
import numpy as np
import pytest
from PIL import Image

from fleet.internal.v1 import descriptor_pb2, worker_pb2, worker_pb2_grpc
from fleet.v1 import inference_pb2, model_pb2
from services.cache import FleetCache
from services.common import descriptors
from services.common.model_record import ModelRecord
from services.common.model_spec import ModelSpec
from services.common.server import Runner
from services.model_worker.server import build
from services.model_worker.settings import WorkerSettings
from services.common.errors import ModelNotFound
from tests.conftest import write_catalog
from tests.onnx_factory import write_package, yolov8_like
from tests.registry_harness import start_registry

RNG = np.random.default_rng(0)
PIXELS = RNG.integers(0, 255, (120, 200, 3), dtype=np.uint8)
PNG = cv2.imencode(".png", cv2.cvtColor(PIXELS, cv2.COLOR_RGB2BGR))[1].tobytes()  # OpenCV writes BGR


def descriptor(pkg: Path, model_id: str, **spec_updates: object) -> descriptor_pb2.ModelDescriptor:
    spec = ModelSpec.from_package(pkg)
    if spec_updates:
        spec = spec.model_copy(update=spec_updates)
    record = ModelRecord(model_id=model_id, workspace="demo", spec=spec, artifact_uri=(pkg / "model.onnx").as_uri())
    return descriptors.to_proto(record)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A small PNG whose header declares width x height: its pixel data is a few bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _chunk(b"IEND", b""))


def gif() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(PIXELS).save(buf, "GIF")
    return buf.getvalue()


class WorkerHarness:
    def __init__(self, runner: Runner, stub: worker_pb2_grpc.ModelWorkerServiceStub, cache_dir: Path) -> None:
        self.runner, self.stub, self.cache_dir = runner, stub, cache_dir

    @property
    def worker(self):  # noqa: ANN201
        return self.runner.service.extra["worker"]

    async def infer(self, model: descriptor_pb2.ModelDescriptor, image: inference_pb2.Image,
                    **params: object) -> inference_pb2.InferResponse:
        request = inference_pb2.InferRequest(model_id=model.model_id, image=image,
                                             parameters=inference_pb2.InferenceParameters(**params))
        reply = await self.stub.Infer(worker_pb2.ModelWorkerServiceInferRequest(model=model, request=request))
        return reply.response


async def start_worker(tmp_path: Path, redis_url: str, namespace: str, **settings: object) -> WorkerHarness:
    s = WorkerSettings(port=0, metrics_port=0, redis_url=redis_url, redis_namespace=namespace,
                       model_cache_dir=str(tmp_path / "cache"), worker_id="w-test", heartbeat_interval_s=0.2,
                       **{"artifact_roots": str(tmp_path), "ort_intra_op_threads": 1, **settings})
    runner = Runner(build(s))
    try:
        await runner.start()
    except BaseException:
        await runner.stop()
        raise
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{runner.port}")
    return WorkerHarness(runner, worker_pb2_grpc.ModelWorkerServiceStub(channel), tmp_path / "cache")


@pytest.fixture
async def harness(tmp_path: Path, redis_url: str, namespace: str) -> AsyncIterator[WorkerHarness]:
    h = await start_worker(tmp_path, redis_url, namespace)
    yield h
    await h.runner.stop()


@pytest.fixture
def good(tmp_path: Path) -> descriptor_pb2.ModelDescriptor:
    return descriptor(write_package(tmp_path / "good", yolov8_like()), "good/1")


async def test_bad_input_gets_a_clear_status_and_the_worker_keeps_serving(
        harness: WorkerHarness, good: descriptor_pb2.ModelDescriptor, tmp_path: Path) -> None:
    odd_pkg = write_package(tmp_path / "odd", yolov8_like(extra_rows=2))
    junk_pkg = write_package(tmp_path / "junk", b"definitely not onnx")
    cases = [
        ("corrupt image", good, inference_pb2.Image(encoded=b"\xff\xd8\xff garbage"),
         {}, grpc.StatusCode.INVALID_ARGUMENT, "not a recognisable image"),
        ("zero-size image", good, inference_pb2.Image(encoded=b""), {}, grpc.StatusCode.INVALID_ARGUMENT, "empty"),
        ("no image", good, inference_pb2.Image(), {}, grpc.StatusCode.INVALID_ARGUMENT, "no image"),
        ("truncated PNG", good, inference_pb2.Image(encoded=PNG[: len(PNG) // 2]), {},
         grpc.StatusCode.INVALID_ARGUMENT, "corrupt or truncated"),
        ("unsupported format", good, inference_pb2.Image(encoded=gif()), {},
         grpc.StatusCode.INVALID_ARGUMENT, "GIF is not supported"),
        ("pixel bomb", good, inference_pb2.Image(encoded=png_header_only(12_000, 12_000)), {},
         grpc.StatusCode.INVALID_ARGUMENT, "over the limit"),
        ("raw size mismatch", good, inference_pb2.Image(raw=inference_pb2.RawImage(
            data=b"\0" * 10, width=4, height=4, channels=3)), {}, grpc.StatusCode.INVALID_ARGUMENT, "needs 48 bytes"),
        ("negative confidence", good, inference_pb2.Image(encoded=PNG), {"confidence": -0.5},
         grpc.StatusCode.INVALID_ARGUMENT, "confidence"),
        ("iou above 1", good, inference_pb2.Image(encoded=PNG), {"iou_threshold": 1.5},
         grpc.StatusCode.INVALID_ARGUMENT, "iou_threshold"),
        ("max_detections 0", good, inference_pb2.Image(encoded=PNG), {"max_detections": 0},
         grpc.StatusCode.INVALID_ARGUMENT, "max_detections"),
        ("unknown class filter", good, inference_pb2.Image(encoded=PNG), {"class_filter": ["dog"]},
         grpc.StatusCode.INVALID_ARGUMENT, "not classes of this model"),
        ("many unknown classes", good, inference_pb2.Image(encoded=PNG),
         {"class_filter": [f"name-{i}-{'x' * 60}" for i in range(3000)]}, grpc.StatusCode.INVALID_ARGUMENT,
         "3000 unknown classes: 'name-0-"),
        ("a URL with a bad port", good, inference_pb2.Image(url="http://127.0.0.1:99999/"), {},
         grpc.StatusCode.INVALID_ARGUMENT, "port 99999"),
        ("a URL with a bad host", good, inference_pb2.Image(url="http://[::1/"), {},
         grpc.StatusCode.INVALID_ARGUMENT, "malformed"),
        ("an artifact outside the roots", _moved(good, "elsewhere/1", "file:///etc/hostname"),
         inference_pb2.Image(encoded=PNG), {}, grpc.StatusCode.FAILED_PRECONDITION, "not allowed on this worker"),
        ("sha256 mismatch", _with_sha(good, "tampered/1"), inference_pb2.Image(encoded=PNG), {}, grpc.StatusCode.FAILED_PRECONDITION, "expects"),
        ("not ONNX", descriptor(junk_pkg, "junk/1"), inference_pb2.Image(encoded=PNG), {},
         grpc.StatusCode.FAILED_PRECONDITION, "could not open"),
        ("outputs do not match type", descriptor(odd_pkg, "odd/1"), inference_pb2.Image(encoded=PNG), {},
         grpc.StatusCode.FAILED_PRECONDITION, "do not match model_type"),
    ]
    for name, model, image, params, code, message in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await harness.infer(model, image, **params)
        assert err.value.code() == code, name
        assert message in err.value.details(), f"{name}: {err.value.details()}"
        assert len(err.value.details()) <= 512 and str(tmp_path) not in err.value.details(), name
        ok = await harness.infer(good, inference_pb2.Image(encoded=PNG))
        assert (ok.image_width, ok.image_height) == (200, 120), name
    assert [m.model_id for m in harness.worker.manager.models()] == ["good/1"]
    cached = sorted(p.name for p in harness.cache_dir.rglob("*") if p.is_file() and not p.name.endswith(".lock"))
    assert cached == []  # file:// artifacts are verified in place; nothing bad was kept


def _moved(model: descriptor_pb2.ModelDescriptor, model_id: str, uri: str) -> descriptor_pb2.ModelDescriptor:
    moved = descriptor_pb2.ModelDescriptor()
    moved.CopyFrom(model)
    moved.model_id, moved.artifact_uri = model_id, uri
    return moved


def _with_sha(model: descriptor_pb2.ModelDescriptor, model_id: str) -> descriptor_pb2.ModelDescriptor:
    tampered = descriptor_pb2.ModelDescriptor()
    tampered.CopyFrom(model)
    tampered.model_id, tampered.sha256 = model_id, "e" * 64
    spec = json.loads(tampered.spec_json)  # the record the registry holds says the same
    spec["weights"]["sha256"] = "e" * 64
    tampered.spec_json = json.dumps(spec)
    return tampered


async def test_raw_pixels_and_encoded_bytes_give_the_same_result(harness: WorkerHarness, good) -> None:
    encoded = await harness.infer(good, inference_pb2.Image(encoded=PNG), confidence=0.0, max_detections=5)
    raw = await harness.infer(good, inference_pb2.Image(raw=inference_pb2.RawImage(
        data=PIXELS.tobytes(), width=200, height=120, channels=3)), confidence=0.0, max_detections=5)
    bgr = await harness.infer(good, inference_pb2.Image(raw=inference_pb2.RawImage(
        data=PIXELS[:, :, ::-1].tobytes(), width=200, height=120, channels=3,
        color_order=model_pb2.COLOR_ORDER_BGR)), confidence=0.0, max_detections=5)
    boxes = [[(d.x, d.y, d.class_id) for d in r.object_detection.detections] for r in (encoded, raw, bgr)]
    assert boxes[0] and boxes[0] == boxes[1] == boxes[2]


async def test_management_rpcs(harness: WorkerHarness, good) -> None:
    loaded = await harness.stub.LoadModel(worker_pb2.LoadModelRequest(model=good))
    assert not loaded.already_loaded and loaded.model.execution_provider == "CPUExecutionProvider"
    assert (await harness.stub.LoadModel(worker_pb2.LoadModelRequest(model=good))).already_loaded
    await harness.infer(good, inference_pb2.Image(encoded=PNG))
    described = await harness.stub.DescribeModels(worker_pb2.ModelWorkerServiceDescribeModelsRequest())
    [model] = described.models
    assert model.model_id == "good/1" and model.request_count == 1 and model.size_bytes > 0
    assert model.load_seconds > 0 and model.last_used_at.seconds > 0 and model.workspace == "demo"
    assert described.load.loaded_models == 1 and described.load.worker_id == "w-test"
    assert (await harness.stub.UnloadModel(worker_pb2.UnloadModelRequest(model_id="good/1"))).unloaded
    assert not (await harness.stub.UnloadModel(worker_pb2.UnloadModelRequest(model_id="good/1"))).unloaded
    await harness.stub.LoadModel(worker_pb2.LoadModelRequest(model=good))
    cleared = await harness.stub.ClearModels(worker_pb2.ModelWorkerServiceClearModelsRequest(workspace="other"))
    assert list(cleared.model_ids) == []
    cleared = await harness.stub.ClearModels(worker_pb2.ModelWorkerServiceClearModelsRequest(workspace="demo"))
    assert list(cleared.model_ids) == ["good/1"]


async def test_inference_log_and_heartbeat_reach_redis(harness: WorkerHarness, good, cache: FleetCache) -> None:
    response = await harness.infer(good, inference_pb2.Image(encoded=PNG))
    for _ in range(50):
        entries = await cache.inference_log.recent("w-test", "good/1")
        if entries:
            break
        await asyncio.sleep(0.1)
    assert entries[0]["inference_id"] == response.inference_id
    for _ in range(50):
        beat = (await cache.heartbeats.live())["w-test"]
        if beat.models and beat.models[0].measured_seconds:
            break
        await asyncio.sleep(0.1)
    assert beat.address == f"127.0.0.1:{harness.runner.port}" and beat.boot_id and not beat.draining
    [load] = beat.models
    assert load.model_id == "good/1" and load.sha256 == good.sha256 and load.workspace == "demo"
    assert load.size_bytes > 0 and load.in_flight == 0 and load.measured_seconds > 0


async def test_redis_down_never_fails_an_inference(tmp_path: Path, own_redis, good) -> None:
    h = await start_worker(tmp_path, own_redis.url, "ns", redis_timeout_s=0.3)
    try:
        await h.infer(good, inference_pb2.Image(encoded=PNG))
        own_redis.stop()
        for _ in range(3):
            response = await h.infer(good, inference_pb2.Image(encoded=PNG))
            assert response.image_width == 200
        await asyncio.sleep(0.6)  # let the inference log try, and fail, to write
        metrics = httpx.get(f"http://127.0.0.1:{h.runner.metrics_port}/metrics").text
        lost = next(line for line in metrics.splitlines()
                    if line.startswith("fleet_worker_inference_log_failures_total "))
        assert float(lost.split()[1]) >= 3
    finally:
        await h.runner.stop()


async def test_preloaded_models_are_pinned_before_the_worker_is_ready(tmp_path: Path, redis_url: str,
                                                                      namespace: str) -> None:
    pkg = write_package(tmp_path / "pre", yolov8_like())
    catalog = write_catalog(tmp_path / "catalog.yaml", [
        {"id": "pre/1", "workspace": "demo", "package": str(pkg), "aliases": ["preloaded"]}])
    registry = await start_registry(tmp_path, redis_url, namespace, catalog)
    try:
        h = await start_worker(tmp_path, redis_url, namespace, preload="preloaded", preload_workspace="demo",
                               max_active_models=1, registry_address=f"127.0.0.1:{registry.port}")
        try:
            [model] = h.worker.manager.models()
            assert model.model_id == "pre/1" and model.pinned
            await h.infer(descriptor(write_package(tmp_path / "other", yolov8_like(seed=3)), "other/1"),
                          inference_pb2.Image(encoded=PNG))
            assert "pre/1" in [m.model_id for m in h.worker.manager.models()]  # pinned: not evicted
        finally:
            await h.runner.stop()
        with pytest.raises(ModelNotFound, match="preload"):  # another workspace's private model: not found
            await start_worker(tmp_path, redis_url, namespace, preload="pre/1", preload_workspace="other",
                               registry_address=f"127.0.0.1:{registry.port}")
    finally:
        await registry.stop()


async def test_require_loaded_answers_not_loaded_instead_of_loading(harness: WorkerHarness, good) -> None:
    request = inference_pb2.InferRequest(model_id="good/1", image=inference_pb2.Image(encoded=PNG))
    call = worker_pb2.ModelWorkerServiceInferRequest(model=good, request=request, require_loaded=True)
    reply = await harness.stub.Infer(call)
    assert reply.not_loaded and not reply.HasField("response")
    assert harness.worker.manager.models() == []  # nothing was loaded
    await harness.infer(good, inference_pb2.Image(encoded=PNG))  # a placement loads it
    reply = await harness.stub.Infer(call)
    assert not reply.not_loaded and reply.response.image_width == 200
    newer = _with_sha(good, "good/1")  # another version of the same model id is not the loaded copy
    reply = await harness.stub.Infer(worker_pb2.ModelWorkerServiceInferRequest(model=newer, request=request,
                                                                                 require_loaded=True))
    assert reply.not_loaded


async def test_sigterm_drains_announcing_it_then_finishes_in_flight(tmp_path: Path, redis_url: str, namespace: str,
                                                                     good, cache: FleetCache) -> None:
    h = await start_worker(tmp_path, redis_url, namespace, drain_notice_s=1.0)
    health = health_pb2_grpc.HealthStub(grpc.aio.insecure_channel(f"127.0.0.1:{h.runner.port}"))
    await h.infer(good, inference_pb2.Image(encoded=PNG))
    stopping = asyncio.create_task(h.runner.stop())
    try:
        for _ in range(50):
            beat = (await cache.heartbeats.live()).get("w-test")
            if beat is not None and beat.draining:
                break
            await asyncio.sleep(0.02)
        assert beat is not None and beat.draining  # published at once, not at the next interval
        status = await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
        # During the notice a request sent before the gateways noticed is still served.
        response = await h.infer(good, inference_pb2.Image(encoded=PNG))
        assert response.image_width == 200 and not stopping.done()
        await asyncio.wait_for(stopping, 20)
    finally:
        await asyncio.wait_for(stopping, 20)
    assert "w-test" not in await cache.heartbeats.live()  # left once stopped
async def test_per_model_series(tmp_path: Path, redis_url: str, namespace: str) -> None:
    from prometheus_client import REGISTRY  # noqa: PLC0415

    # Ids of their own, under a cap no other test in this process can have used up.
    model_id = f"series-{uuid.uuid4().hex[:8]}/1"
    good = descriptor(write_package(tmp_path / "good", yolov8_like()), model_id)

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    other = descriptor(write_package(tmp_path / "second", yolov8_like(seed=5)), "second/1")
    before = {k: sample(*k[:1], **dict(k[1:])) for k in [
        ("fleet_worker_requests_total", ("model_id", model_id), ("outcome", "OK")),
        ("fleet_worker_requests_total", ("model_id", model_id), ("outcome", "InvalidArgument")),
        ("fleet_worker_cold_starts_total", ("model_id", model_id)),
        ("fleet_worker_batch_size_count", ("model_id", model_id)),
        ("fleet_worker_queue_seconds_count", ("model_id", model_id)),
        ("fleet_worker_inference_seconds_count", ("model_id", model_id)),
        ("fleet_worker_request_seconds_count", ("model_id", model_id)),
        ("fleet_worker_model_loads_total", ("model_id", model_id), ("outcome", "loaded")),
        ("fleet_worker_evictions_total", ("model_id", model_id), ("reason", "count")),
    ]}
    in_flight = sample("fleet_worker_in_flight_requests")
    h = await start_worker(tmp_path, redis_url, namespace, max_active_models=1, metrics_max_models=1_000_000)
    try:
        for _ in range(3):
            await h.infer(good, inference_pb2.Image(encoded=PNG))
        with pytest.raises(grpc.aio.AioRpcError):
            await h.infer(good, inference_pb2.Image(encoded=b"\xff\xd8\xff garbage"))
        assert sample("fleet_worker_model_loaded", model_id=model_id) == 1
        assert sample("fleet_worker_model_bytes", model_id=model_id) == h.worker.manager.get(model_id).size_bytes
        await h.infer(other, inference_pb2.Image(encoded=PNG))  # evicts the first (one model at most)
        after = {k: sample(*k[:1], **dict(k[1:])) for k in before}
        delta = {k[0] + str(dict(k[1:])): after[k] - before[k] for k in before}
        assert list(delta.values()) == [3, 1, 1, 3, 3, 3, 3, 1, 1], delta
        assert sample("fleet_worker_model_loaded", model_id=model_id) == 0
        assert sample("fleet_worker_model_bytes", model_id=model_id) == 0
        assert sample("fleet_worker_queue_depth", model_id=model_id) == 0
        assert sample("fleet_worker_in_flight_requests") == in_flight  # (other tests acquire without releasing)
        assert sample("fleet_worker_info", worker_id="w-test", execution_provider="CPUExecutionProvider") == 1
    finally:
        await h.runner.stop()
