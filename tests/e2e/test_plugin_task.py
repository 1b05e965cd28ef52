"""A task added as a plug-in: defined only in tests/plugins/toy_task.py, served end to end through fleet.v1,
OIP, the HTTP edge and the CLI, with no file outside the tests naming it (the proof that a task is one module)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import cv2
import grpc
import httpx
import numpy as np
import pytest
from google.protobuf.wrappers_pb2 import DoubleValue

from fleet.client import FleetClient
from fleet.v1 import inference_pb2, model_pb2
from fleet_oip.v2 import grpc_service_pb2 as oip
from fleet_oip.v2 import grpc_service_pb2_grpc as oip_grpc
from services.cache.embedded import delete_namespace
from services.local.processes import LocalFleet
from tests.conftest import TEST_KEY, write_catalog
from tests.plugins.toy_task import mean_model

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
PLUGIN = "tests.plugins.toy_task"
MODEL = "toy-brightness/1"
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}


def _package(dest: Path) -> Path:
    dest.mkdir(parents=True)
    weights = mean_model(32)
    (dest / "model.onnx").write_bytes(weights)
    (dest / "model.json").write_text(json.dumps({
        "format_version": 1, "name": "toy-brightness", "task_type": "brightness", "model_type": "mean-value",
        "input": {"width": 32, "height": 32, "resize_mode": "stretch"}, "batch": {"max_batch_size": 8},
        "weights": {"sha256": hashlib.sha256(weights).hexdigest(), "size_bytes": len(weights)},
    }))
    return dest


def _png(rgb: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    """A uniform image: its normalised mean is the same at any size, (r + g + b) / 3 / 255."""
    img = np.zeros((size[1], size[0], 3), np.uint8)
    img[:] = rgb[::-1]  # OpenCV writes BGR
    return cv2.imencode(".png", img)[1].tobytes()


GREY = _png((51, 102, 153))  # mean 0.4
DARK = _png((0, 0, 51), (64, 16))  # mean 1/15


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[LocalFleet]:
    tmp = tmp_path_factory.mktemp("plugin")
    package = _package(tmp / "toy")
    catalog = write_catalog(tmp / "catalog.yaml", [{"id": MODEL, "workspace": "demo", "package": str(package)}])
    namespace = f"e2e-{uuid.uuid4().hex[:10]}"
    local = LocalFleet(redis_url, catalog, workers=1, namespace=namespace, state_dir=tmp / "run",
                       env={"FLEET_TASK_MODULES": PLUGIN, "PYTHONPATH": str(ROOT)})
    try:
        yield local.start()
    finally:
        local.stop()
        delete_namespace(redis_url, namespace)


def test_fleet_v1_answers_the_plugin_tasks_result(fleet: LocalFleet) -> None:
    with FleetClient(fleet.gateway.address, TEST_KEY) as client:
        response = client.infer(MODEL, GREY)
        assert response.task == "brightness" and response.task_type == model_pb2.TASK_TYPE_UNSPECIFIED
        value = DoubleValue()
        assert response.task_result.Unpack(value) and value.value == pytest.approx(0.4, abs=1e-4)
        batch = client.infer_batch(MODEL, [GREY, b"\xff\xd8\xff not a jpeg", DARK])
        assert [i.WhichOneof("outcome") for i in batch.items] == ["response", "error", "response"]
        assert batch.items[1].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        batch.items[2].response.task_result.Unpack(value)
        assert value.value == pytest.approx(1 / 15, abs=1e-4)
        described = [m for m in client.describe_models().models if m.model_id == MODEL]
        assert described and described[0].task == "brightness"


def test_oip_serves_the_plugin_tasks_tensors_and_batches_rows(fleet: LocalFleet) -> None:
    metadata = (("authorization", f"Bearer {TEST_KEY}"),)
    with grpc.insecure_channel(fleet.gateway.address) as channel:
        stub = oip_grpc.GRPCInferenceServiceStub(channel)
        meta = stub.ModelMetadata(oip.ModelMetadataRequest(name="toy-brightness", version="1"), metadata=metadata)
        assert meta.parameters["task"].string_param == "brightness"
        assert [o.name for o in meta.outputs] == ["brightness", "image_size", "visualization"]
        request = oip.ModelInferRequest(model_name="toy-brightness", model_version="1")
        request.inputs.add(name="image", datatype="BYTES", shape=[2])
        request.raw_input_contents.append(b"".join(len(i).to_bytes(4, "little") + i for i in (GREY, DARK)))
        reply = stub.ModelInfer(request, metadata=metadata, timeout=60)
        names = [o.name for o in reply.outputs]
        values = np.frombuffer(reply.raw_output_contents[names.index("brightness")], np.float32)
        np.testing.assert_allclose(values, [0.4, 1 / 15], atol=1e-4)
        bad = oip.ModelInferRequest(model_name="toy-brightness", model_version="1")
        bad.inputs.add(name="image", datatype="BYTES", shape=[2])
        bad.raw_input_contents.append(b"".join(len(i).to_bytes(4, "little") + i for i in (GREY, b"junk")))
        with pytest.raises(grpc.RpcError) as err:
            stub.ModelInfer(bad, metadata=metadata, timeout=60)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "batch row 1" in err.value.details()


def test_http_has_the_plugin_tasks_route_and_json(fleet: LocalFleet) -> None:
    body = {"model_id": MODEL, "image": [{"type": "base64", "value": base64.b64encode(i).decode()}
                                         for i in (GREY, DARK)]}
    with httpx.Client(base_url=fleet.gateway.http_url, timeout=60) as http:
        answers = http.post("/infer/brightness", json=body, headers=AUTH)
        assert answers.status_code == 200, answers.text
        assert [round(a["brightness"], 3) for a in answers.json()] == [0.4, round(1 / 15, 3)]
        one = http.post("/infer/brightness", json={**body, "image": body["image"][0]}, headers=AUTH).json()
        assert one["brightness"] == pytest.approx(0.4, abs=1e-4) and one["image"] == {"width": 40, "height": 30}
        wrong = http.post("/infer/object_detection", json=body, headers=AUTH)
        assert wrong.status_code == 400 and "/infer/brightness" in wrong.json()["message"]
        corrupt = http.post("/infer/brightness", headers=AUTH, json={**body, "image": [
            body["image"][0], {"type": "base64", "value": base64.b64encode(b"junk").decode()}]})
        assert corrupt.status_code == 400 and "image 1:" in corrupt.json()["message"]
        assert "/infer/brightness" in http.get("/openapi.json").json()["paths"]


def _worker_calls(fleet: LocalFleet, method: str) -> float:
    """The worker's count of finished ``method`` calls (grpc_server_handled_total)."""
    text = httpx.get(f"http://127.0.0.1:{fleet.worker_processes[0].metrics_port}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("grpc_server_handled_total{") and f'grpc_method="{method}"' in line)


def test_several_images_reach_the_worker_as_one_batch_from_every_edge(fleet: LocalFleet) -> None:
    """A Roboflow request with several images and an OIP batch are one InferBatch call to the worker (the core's
    batch use case), not one Infer per image."""
    before = {m: _worker_calls(fleet, m) for m in ("Infer", "InferBatch")}
    body = {"model_id": MODEL, "image": [{"type": "base64", "value": base64.b64encode(i).decode()}
                                         for i in (GREY, DARK, GREY)]}
    with httpx.Client(base_url=fleet.gateway.http_url, timeout=60) as http:
        assert http.post("/infer/brightness", json=body, headers=AUTH).status_code == 200
    with grpc.insecure_channel(fleet.gateway.address) as channel:
        request = oip.ModelInferRequest(model_name="toy-brightness", model_version="1")
        request.inputs.add(name="image", datatype="BYTES", shape=[3])
        request.raw_input_contents.append(b"".join(len(i).to_bytes(4, "little") + i for i in (GREY, DARK, DARK)))
        oip_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
            request, metadata=(("authorization", f"Bearer {TEST_KEY}"),), timeout=60)
    after = {m: _worker_calls(fleet, m) for m in ("Infer", "InferBatch")}
    assert (after["InferBatch"] - before["InferBatch"], after["Infer"] - before["Infer"]) == (2, 0)


def test_the_cli_renders_the_plugin_tasks_table(fleet: LocalFleet, tmp_path: Path) -> None:
    image = tmp_path / "grey.png"
    image.write_bytes(GREY)
    env = {**os.environ, "FLEET_TASK_MODULES": PLUGIN, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "fleet.cli.main", "infer", "--model", MODEL, str(image),
                          "--address", fleet.gateway.address, "--api-key", TEST_KEY],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "brightness: 0.4000" in out.stdout


def test_the_plugin_task_declares_its_own_cli_command(fleet: LocalFleet, tmp_path: Path) -> None:
    """``fleet brightness`` exists only because the plug-in declares it (``Task.cli_commands``)."""
    grey, dark = tmp_path / "grey.png", tmp_path / "dark.png"
    grey.write_bytes(GREY)
    dark.write_bytes(DARK)
    env = {**os.environ, "FLEET_TASK_MODULES": PLUGIN, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "fleet.cli.main", "brightness", str(grey), str(dark), "--model", MODEL,
                          "--address", fleet.gateway.address, "--api-key", TEST_KEY],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"{grey}: 0.4000", f"{dark}: 0.0667"]
    without = subprocess.run([sys.executable, "-m", "fleet.cli.main", "brightness", "--help"], capture_output=True,
                             text=True, env={**env, "FLEET_TASK_MODULES": ""}, timeout=60)
    assert without.returncode == 2 and "invalid choice: 'brightness'" in without.stderr
