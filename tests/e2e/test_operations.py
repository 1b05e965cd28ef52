"""Operating the fleet: health, reflection, metrics, request ids, secrets, retries, shutdown, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import cv2
import grpc
import httpx
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from fleet.client import FleetClient, build_request
from services.demo.scenes import generate_scene
from services.local.processes import LocalFleet
from fleet.v1 import gateway_pb2
from tests.conftest import TEST_KEY, demo_models, write_catalog

IMAGE = cv2.imencode(".jpg", generate_scene(9_100_000).image[:, :, ::-1])[1].tobytes()


def test_every_service_reports_health_reflection_and_metrics(fleet: LocalFleet, client: FleetClient) -> None:
    client.infer("shapes-det/1", IMAGE)
    expected = {"gateway": "fleet.v1.GatewayService", "registry": "fleet.internal.v1.RegistryService",
                "worker-0": "fleet.internal.v1.ModelWorkerService"}
    for name, service in expected.items():
        process = fleet.service(name)
        with grpc.insecure_channel(process.address) as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service))
            assert status.status == health_pb2.HealthCheckResponse.SERVING, name
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            reply = next(reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
                list_services="")])))
            listed = {s.name for s in reply.list_services_response.service}
            assert {service, "grpc.health.v1.Health"} <= listed, name
        metrics = httpx.get(f"http://127.0.0.1:{process.metrics_port}/metrics").text
        assert "grpc_server_handling_seconds_bucket" in metrics and "grpc_server_handled_total" in metrics, name
    worker_metrics = httpx.get(f"http://127.0.0.1:{fleet.worker_processes[0].metrics_port}/metrics").text
    for family in ("fleet_worker_model_loads_total", "fleet_worker_batch_size_bucket",
                   'fleet_worker_stage_seconds_bucket{le="0.001",stage="inference"}', "fleet_worker_loaded_models"):
        assert family in worker_metrics


def test_request_id_follows_the_request_and_keys_never_reach_logs(fleet: LocalFleet, redis_url: str) -> None:
    ok_id, failed_id = f"e2e-{uuid.uuid4().hex[:8]}", f"e2e-{uuid.uuid4().hex[:8]}"
    with FleetClient(fleet.gateway.address, TEST_KEY) as c:
        c.stub.Infer(build_request("shapes-det/1", IMAGE), metadata=c.metadata + (("x-request-id", ok_id),),
                     timeout=30)
        with pytest.raises(grpc.RpcError):  # reaches the worker, which refuses the image
            c.stub.Infer(build_request("shapes-det/1", b"\xff\xd8junk"),
                         metadata=c.metadata + (("x-request-id", failed_id),), timeout=30)
    # The successful request's id reached the worker: its inference-log entry in Redis carries it.
    log_key = f"{fleet.namespace}:inference:worker-0:shapes-det/1"
    client = redis.Redis.from_url(redis_url)
    try:
        for _ in range(50):
            entries = [json.loads(e) for e in client.zrange(log_key, 0, -1)]
            if any(e["request_id"] == ok_id for e in entries):
                break
            time.sleep(0.1)
        assert any(e["request_id"] == ok_id for e in entries)
    finally:
        client.close()
    # Failed calls are logged (successful ones only at DEBUG), with the same id in each service.
    for name in ("gateway", "worker-0"):
        entries = [json.loads(line) for line in fleet.service(name).log_path.read_text().splitlines()
                   if failed_id in line]
        assert entries and all(e["request_id"] == failed_id for e in entries), name
        assert any(e.get("code") == "INVALID_ARGUMENT" for e in entries), name
    for name in ("gateway", "registry", "worker-0"):
        assert TEST_KEY not in fleet.service(name).log_path.read_text(), name


def test_model_management_through_the_gateway(client: FleetClient) -> None:
    stub, md = client.stub, client.metadata
    added = stub.AddModel(gateway_pb2.AddModelRequest(model_id="shapes-classifier"), metadata=md, timeout=60)
    assert added.model.model_id == "shapes-cls/1" and list(added.worker_ids) == ["worker-0"]
    loaded = {m.model_id for m in client.describe_models().models}
    assert "shapes-cls/1" in loaded
    removed = stub.RemoveModel(gateway_pb2.RemoveModelRequest(model_id="shapes-cls/1"), metadata=md, timeout=60)
    assert list(removed.worker_ids) == ["worker-0"]
    assert "shapes-cls/1" not in {m.model_id for m in client.describe_models().models}
    info = client.server_info()
    assert info.name == "inference-fleet" and info.workers[0].worker_id == "worker-0"
    client.infer("shapes-det/1", IMAGE)
    cleared = stub.ClearModels(gateway_pb2.ClearModelsRequest(), metadata=md, timeout=60)
    assert cleared.unloaded >= 1 and not client.describe_models().models


def test_streaming_answers_every_item_and_survives_bad_ones(client: FleetClient) -> None:
    items = [gateway_pb2.InferStreamRequest(correlation_id=str(i), request=build_request(
        "shapes-det/1", IMAGE if i % 5 else b"junk")) for i in range(20)]
    replies = list(client.stub.InferStream(iter(items), metadata=client.metadata, timeout=60))
    assert sorted(int(r.correlation_id) for r in replies) == list(range(20))
    errors = {r.correlation_id: r.error for r in replies if r.WhichOneof("outcome") == "error"}
    assert set(errors) == {"0", "5", "10", "15"}
    assert all(e.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] for e in errors.values())
    assert all(r.response.object_detection.detections for r in replies if r.correlation_id not in errors)


def test_fleet_infer_cli(fleet: LocalFleet, tmp_path: Path) -> None:
    image = tmp_path / "scene.jpg"
    image.write_bytes(IMAGE)
    env = {**os.environ, "FLEET_ADDRESS": fleet.gateway.address, "FLEET_API_KEY": TEST_KEY,
           "XDG_STATE_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "fleet.cli.main", "infer", "--model", "shapes-det/1", str(image)],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "detections" in out.stdout and "confidence" in out.stdout
    out = subprocess.run([sys.executable, "-m", "fleet.cli.main", "infer", "--json", "--model", "nope/1",
                          str(image)], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "NOT_FOUND" in out.stderr


@pytest.mark.slow
def test_a_dead_worker_is_retried_elsewhere_and_sigterm_is_graceful(tmp_path: Path, redis_url: str,
                                                                    namespace: str) -> None:
    catalog = write_catalog(tmp_path / "catalog.yaml", demo_models())
    local = LocalFleet(redis_url, catalog, workers=2, namespace=namespace, state_dir=tmp_path / "run")
    with local:
        with FleetClient(local.gateway.address, TEST_KEY) as c:
            first = c.infer("shapes-det/1", IMAGE)
            serving = local.service(first.worker_id)
            assert c.infer("shapes-det/1", IMAGE).worker_id == first.worker_id  # sticks to the holder
            serving.proc.send_signal(signal.SIGKILL)
            serving.proc.wait()
            retried = c.infer("shapes-det/1", IMAGE)
            assert retried.worker_id != first.worker_id and retried.object_detection.detections
        codes = local.stop()
    assert codes["gateway"] == 0 and codes["registry"] == 0
    survivor = next(p for p in local.worker_processes if p.name != first.worker_id)
    assert codes[survivor.name] == 0 and "worker stopped" in survivor.log_path.read_text()
