"""The gateway's HTTP API (KServe v2 REST with httpx, Roboflow routes) and OIP over gRPC with the fleet's own
OIP stubs, against the real fleet; every bad input of the gRPC API gets the matching HTTP status."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import cv2
import grpc
import httpx
import numpy as np
import pytest

from fleet.client import FleetClient, build_request
from fleet.v1 import gateway_pb2_grpc
from fleet_oip.v2 import grpc_service_pb2 as oip
from fleet_oip.v2 import grpc_service_pb2_grpc as oip_grpc
from services.gateway.http.errors import STATUS
from services.local.processes import LocalFleet
from tests.conftest import OTHER_KEY, TEST_KEY
from tests.e2e.test_inference import SEEDS, encode
from services.demo.scenes import generate_scene
from tests.model_worker.test_service import png_header_only

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}


@pytest.fixture(scope="module")
def http(fleet: LocalFleet) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fleet.gateway.http_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def scene_jpeg() -> bytes:
    return encode(generate_scene(SEEDS[3]).image)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_kserve_rest_health_metadata_and_infer(http: httpx.Client, client: FleetClient, scene_jpeg: bytes) -> None:
    assert http.get("/v2/health/live").json() == {"live": True}
    assert http.get("/v2/health/ready").status_code == 200
    server = http.get("/v2").json()
    assert server["name"] == "inference-fleet" and "model_repository" in server["extensions"]

    meta = http.get("/v2/models/shapes-det/versions/1", headers=AUTH).json()
    assert meta["name"] == "shapes-det" and meta["versions"] == ["1"] and meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"][0]["name"] == "image" and meta["inputs"][0]["datatype"] == "BYTES"
    assert {"boxes", "scores", "class_ids", "class_names"} <= {o["name"] for o in meta["outputs"]}
    assert meta["parameters"]["task"] == "object-detection" and "circle" in meta["parameters"]["class_names"]
    assert http.get("/v2/models/shapes-detector", headers=AUTH).json()["parameters"]["model_id"] == "shapes-det/1"

    reference = client.infer("shapes-det/1", scene_jpeg, confidence=0.4)
    body = {"id": "req-7", "parameters": {"confidence": 0.4},
            "inputs": [{"name": "image", "shape": [2], "datatype": "BYTES", "data": [b64(scene_jpeg)] * 2}]}
    answer = http.post("/v2/models/shapes-det/versions/1/infer", json=body, headers=AUTH).json()
    assert answer["id"] == "req-7" and answer["model_name"] == "shapes-det" and answer["model_version"] == "1"
    outputs = {o["name"]: o for o in answer["outputs"]}
    n = len(reference.object_detection.detections)
    assert outputs["boxes"]["shape"] == [2 * n, 4] and outputs["batch_index"]["data"] == [0] * n + [1] * n
    boxes = np.array(outputs["boxes"]["data"]).reshape(-1, 4)[:n]
    want = [[d.x - d.width / 2, d.y - d.height / 2, d.x + d.width / 2, d.y + d.height / 2]
            for d in reference.object_detection.detections]
    np.testing.assert_allclose(boxes, want, atol=1e-3)
    assert outputs["class_names"]["data"][:n] == [d.class_name for d in reference.object_detection.detections]

    small = encode(generate_scene(SEEDS[3]).image[::2, ::2].copy())
    reference = client.infer("shapes-det/1", small, confidence=0.4)
    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(small, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    raw = {"inputs": [{"name": "image", "shape": list(rgb.shape), "datatype": "UINT8", "data": rgb.tolist()}],
           "outputs": [{"name": "boxes"}, {"name": "class_names"}], "parameters": {"confidence": 0.4}}
    pixels = http.post("/v2/models/shapes-detector/infer", json=raw, headers=AUTH)
    assert pixels.status_code == 200, pixels.text[:500]
    pixels = pixels.json()
    assert [o["name"] for o in pixels["outputs"]] == ["boxes", "class_names"]
    assert sorted(pixels["outputs"][1]["data"]) == sorted(d.class_name for d in reference.object_detection.detections)

    classes = http.post("/v2/models/shapes-cls/versions/1/infer", headers=AUTH, json={
        "inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [b64(scene_jpeg)]}]}).json()
    probabilities = next(o for o in classes["outputs"] if o["name"] == "probabilities")
    assert probabilities["shape"][0] == 1 and abs(sum(probabilities["data"]) - 1) < 1e-3
    assert http.get("/v2/models/shapes-cls/versions/1/ready", headers=AUTH).json() == {"name": "shapes-cls",
                                                                                        "ready": True}


def test_kserve_rest_repository_extension(http: httpx.Client) -> None:
    index = {(m["name"], m["version"]): m for m in http.post("/v2/repository/index", headers=AUTH, json={}).json()}
    assert ("shapes-det-v5", "1") in index
    assert http.post("/v2/repository/models/shapes-det-v5/1/load", headers=AUTH).status_code == 200
    assert http.get("/v2/models/shapes-det-v5/versions/1/ready", headers=AUTH).status_code == 200
    ready = {m["name"] for m in http.post("/v2/repository/index", headers=AUTH, json={"ready": True}).json()}
    assert "shapes-det-v5" in ready
    assert http.post("/v2/repository/models/shapes-det-v5/1/unload", headers=AUTH).status_code == 200
    not_ready = http.get("/v2/models/shapes-det-v5/versions/1/ready", headers=AUTH)
    assert not_ready.status_code == 503 and not_ready.json()["ready"] is False


def test_roboflow_routes_match_the_grpc_answer(http: httpx.Client, client: FleetClient, scene_jpeg: bytes) -> None:
    reference = client.infer("shapes-seg/1", scene_jpeg, confidence=0.5)
    answer = http.post("/infer/instance_segmentation", headers=AUTH, json={
        "model_id": "shapes-segmenter", "image": {"type": "base64", "value": "data:image/jpeg;base64," + b64(scene_jpeg)},
        "confidence": 0.5, "visualize_predictions": True, "disable_active_learning": True}).json()
    assert [p["class"] for p in answer["predictions"]] == [i.detection.class_name
                                                            for i in reference.instance_segmentation.instances]
    assert all(len(p["points"]) >= 3 for p in answer["predictions"])
    assert base64.b64decode(answer["visualization"])[:3] == b"\xff\xd8\xff"
    both = http.post("/infer/object_detection", json={"model_id": "shapes-det/1", "api_key": TEST_KEY,
                                                      "image": [{"type": "base64", "value": b64(scene_jpeg)}] * 2})
    assert isinstance(both.json(), list) and len(both.json()) == 2
    wrong_task = http.post("/infer/classification", headers=AUTH,
                           json={"model_id": "shapes-det/1", "image": {"type": "base64", "value": b64(scene_jpeg)}})
    assert wrong_task.status_code == 400 and "use POST /infer/object_detection" in wrong_task.json()["message"]
    added = http.post("/model/add", json={"model_id": "shapes-classifier", "api_key": TEST_KEY}).json()
    assert {"shapes-cls/1", "shapes-classifier"} <= {m["model_id"] for m in added["models"]}
    assert "shapes-cls/1" not in {m["model_id"] for m in http.post("/model/remove", headers=AUTH, json={
        "model_id": "shapes-cls/1"}).json()["models"]}
    assert http.get("/docs").status_code == 200 and "/infer/object_detection" in http.get("/openapi.json").json()["paths"]


def test_roboflow_keypoints_route(http: httpx.Client, client: FleetClient, scene_jpeg: bytes) -> None:
    reference = client.infer("shapes-pose/1", scene_jpeg, confidence=0.5)
    answer = http.post("/infer/keypoints_detection", headers=AUTH, json={
        "model_id": "shapes-corners", "image": {"type": "base64", "value": b64(scene_jpeg)}, "confidence": 0.5}).json()
    assert len(answer["predictions"]) == len(reference.keypoint_detection.instances) > 0
    first = answer["predictions"][0]["keypoints"]
    assert [k["class"] for k in first] == ["corner-1", "corner-2", "corner-3", "corner-4"]
    assert first[0]["x"] == pytest.approx(reference.keypoint_detection.instances[0].keypoints[0].x)
    wrong = http.post("/infer/object_detection", headers=AUTH,
                      json={"model_id": "shapes-pose/1", "image": {"type": "base64", "value": b64(scene_jpeg)}})
    assert wrong.status_code == 400 and "use POST /infer/keypoints_detection" in wrong.json()["message"]


def test_pose_and_oriented_models_over_kserve_rest_and_the_legacy_route(http: httpx.Client, client: FleetClient,
                                                                         scene_jpeg: bytes) -> None:
    image = [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [b64(scene_jpeg)]}]
    pose = client.infer("shapes-pose/1", scene_jpeg, confidence=0.5).keypoint_detection.instances
    answer = http.post("/v2/models/shapes-pose/versions/1/infer", headers=AUTH,
                       json={"inputs": image, "parameters": {"confidence": 0.5}}).json()
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert outputs["keypoints"]["shape"] == [len(pose), len(pose[0].keypoints), 3] and len(pose) > 0
    first = np.array(outputs["keypoints"]["data"]).reshape(outputs["keypoints"]["shape"])[0]
    np.testing.assert_allclose(first[:, :2], [[k.x, k.y] for k in pose[0].keypoints], atol=1e-3)

    boxes = client.infer("shapes-obb/1", scene_jpeg, confidence=0.5).oriented_detection.boxes
    answer = http.post("/v2/models/shapes-rotated/infer", headers=AUTH,
                       json={"inputs": image, "parameters": {"confidence": 0.5}}).json()
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert outputs["obb"]["shape"] == [len(boxes), 5] and outputs["corners"]["shape"] == [len(boxes), 4, 2]
    np.testing.assert_allclose(np.array(outputs["obb"]["data"]).reshape(-1, 5),
                               [[b.x, b.y, b.width, b.height, b.angle] for b in boxes], atol=1e-3)
    legacy = http.post("/shapes-obb/1", params={"api_key": TEST_KEY, "confidence": 50},
                       content=b64(scene_jpeg), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert legacy.status_code == 200, legacy.text[:300]
    predictions = legacy.json()["predictions"]
    assert len(predictions) == len(boxes) and predictions[0]["angle"] == pytest.approx(boxes[0].angle)
    np.testing.assert_allclose([(p["x"], p["y"]) for p in predictions[0]["points"]],
                               [(c.x, c.y) for c in boxes[0].corners], atol=1e-3)


def _grpc_error(stub, request, metadata) -> grpc.RpcError:  # noqa: ANN001
    with pytest.raises(grpc.RpcError) as err:
        stub.Infer(request, metadata=metadata, timeout=30)
    return err.value


def test_every_bad_grpc_input_gets_the_matching_http_status(fleet: LocalFleet, http: httpx.Client,
                                                            scene_jpeg: bytes) -> None:
    channel = grpc.insecure_channel(fleet.gateway.address, options=[("grpc.max_send_message_length", 64 << 20)])
    stub = gateway_pb2_grpc.GatewayServiceStub(channel)
    grpc_auth = (("authorization", f"Bearer {TEST_KEY}"),)
    cases = [  # name, model, image, gRPC metadata, HTTP headers
        ("missing API key", "shapes-det/1", scene_jpeg, (), {}),
        ("wrong API key", "shapes-det/1", scene_jpeg, (("authorization", "Bearer fk_nope"),),
         {"Authorization": "Bearer fk_nope"}),
        ("another workspace's model", "shapes-det/1", scene_jpeg, (("authorization", f"Bearer {OTHER_KEY}"),),
         {"Authorization": f"Bearer {OTHER_KEY}"}),
        ("unknown model", "nope/9", scene_jpeg, grpc_auth, AUTH),
        ("malformed model id", "../etc/passwd", scene_jpeg, grpc_auth, AUTH),
        ("undecodable bytes", "shapes-det/1", b"\x00\x01not-an-image", grpc_auth, AUTH),
        ("pixel bomb", "shapes-det/1", png_header_only(8000, 8000), grpc_auth, AUTH),
        ("over the message-size limit", "shapes-det/1", b"\xff" * (5 * 1024 * 1024), grpc_auth, AUTH),
    ]
    try:
        for name, model, image, metadata, headers in cases:
            err = _grpc_error(stub, build_request(model, image), metadata)
            body = {"model_id": model, "image": {"type": "base64", "value": b64(image)}}
            got = http.post("/infer/object_detection", json=body, headers=headers)
            # (a ".." id cannot travel in a URL path: clients normalise it away)
            legacy = http.post(f"/{model}", content=b64(image), headers=headers) if ".." not in model else got
            for answer in (got, legacy):
                if name == "over the message-size limit":
                    assert answer.status_code == 413 and "larger than max" in answer.json()["message"], name
                    continue
                assert answer.status_code == STATUS[err.code()], f"{name}: {answer.status_code} vs {err.code()}"
                message = answer.json()["message"]
                if name == "missing API key":
                    assert message.startswith("missing API key") and err.details().startswith("missing API key")
                else:
                    assert message == err.details(), f"{name}: {message!r} vs {err.details()!r}"
            again = {"model_id": "shapes-det/1", "image": {"type": "base64", "value": b64(scene_jpeg)}}
            assert http.post("/infer/object_detection", json=again, headers=AUTH).status_code == 200, name
        for body, fragment in [({"model_id": "shapes-det/1", "image": {"type": "numpy", "value": "x"}}, "not accepted"),
                               ({"model_id": "shapes-det/1", "image": {"type": "base64", "value": "***"}}, "base64"),
                               ({"model_id": "shapes-det/1", "image": {"type": "base64", "value": b64(scene_jpeg)},
                                 "confidence": 7}, "confidence must be between 0 and 1"),
                               ({"model_id": "shapes-det/1", "image": {"type": "base64", "value": b64(scene_jpeg)},
                                 "max_detections": -3}, "max_detections"),
                               ({"image": {"type": "base64", "value": "x"}}, "model_id")]:
            bad = http.post("/infer/object_detection", json=body, headers=AUTH)
            assert bad.status_code == 400 and fragment in bad.json()["message"], bad.text
        kserve = http.get("/v2/models/nope/versions/9", headers=AUTH)
        assert kserve.status_code == 404 and "not registered" in kserve.json()["error"]
    finally:
        channel.close()


def test_oip_grpc_with_the_fleets_own_stubs(fleet: LocalFleet, client: FleetClient, scene_jpeg: bytes) -> None:
    channel = grpc.insecure_channel(fleet.gateway.address)
    stub = oip_grpc.GRPCInferenceServiceStub(channel)
    metadata = (("authorization", f"Bearer {TEST_KEY}"),)
    try:
        assert stub.ServerReady(oip.ServerReadyRequest()).ready
        rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(scene_jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        request = oip.ModelInferRequest(model_name="shapes-det/1")
        request.inputs.add(name="image", datatype="UINT8", shape=list(rgb.shape))
        request.raw_input_contents.append(rgb.tobytes())
        request.parameters["confidence"].double_param = 0.4
        reply = stub.ModelInfer(request, metadata=metadata, timeout=60)
        names = [o.name for o in reply.outputs]
        n = reply.outputs[names.index("scores")].shape[0]
        assert n == len(client.infer("shapes-det/1", scene_jpeg, confidence=0.4).object_detection.detections) > 0
        meta = stub.ModelMetadata(oip.ModelMetadataRequest(name="shapes-cls", version="1"), metadata=metadata)
        assert meta.parameters["task"].string_param == "classification"

        def bad(**change: object) -> grpc.RpcError:
            wrong = oip.ModelInferRequest(model_name="shapes-det", model_version="1")
            wrong.inputs.add(name=change.get("name", "image"), datatype=change.get("datatype", "BYTES"),
                             shape=change.get("shape", [1]))
            wrong.raw_input_contents.append(change.get("raw", len(scene_jpeg).to_bytes(4, "little") + scene_jpeg))
            for key, value in change.get("parameters", {}).items():
                wrong.parameters[key].string_param = value
            with pytest.raises(grpc.RpcError) as err:
                stub.ModelInfer(wrong, metadata=metadata, timeout=30)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
            return err.value

        assert "named 'image'" in bad(name="pixels").details()
        assert "BYTES (encoded images) or UINT8" in bad(datatype="FP32", raw=b"\0" * 8).details()
        assert "2 images, but 1 were sent" in bad(shape=[2]).details()
        assert "truncated" in bad(raw=b"\xff\xff\x00\x00abc").details()
        assert "unknown request parameters ['bogus']" in bad(parameters={"bogus": "1"}).details()
        assert "not a recognisable image" in bad(raw=(4).to_bytes(4, "little") + b"\0\1\2\3").details()

        good = oip.ModelInferRequest(model_name="shapes-det", model_version="1", id="a")
        good.inputs.add(name="image", datatype="BYTES", shape=[1])
        good.raw_input_contents.append(len(scene_jpeg).to_bytes(4, "little") + scene_jpeg)
        broken = oip.ModelInferRequest(model_name="nope", model_version="9", id="b")
        broken.inputs.add(name="image", datatype="BYTES", shape=[1])
        streamed = {r.infer_response.id: r for r in stub.ModelStreamInfer(iter([good, broken, good]), metadata=metadata,
                                                                         timeout=60)}
        assert streamed["a"].error_message == "" and streamed["a"].infer_response.outputs
        assert streamed["b"].error_message.startswith("NOT_FOUND")
        with pytest.raises(grpc.RpcError) as err:
            stub.ModelReady(oip.ModelReadyRequest(name="shapes-det", version="1"))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        channel.close()
