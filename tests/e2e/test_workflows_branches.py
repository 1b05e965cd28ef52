"""Workflows against a real fleet (registry, worker, gateway as processes) on what fails alone and what fails the
run, and on image inputs sent by URL (a real loopback HTTP server; the gateway allows private addresses but
only the host 127.0.0.1, so 'localhost' is refused by its allow-list) on HTTP, stored workflows and gRPC."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import grpc
import httpx
import pytest
from google.protobuf import json_format

from fleet.v1 import admin_pb2, admin_pb2_grpc, inference_pb2, workflow_pb2, workflow_pb2_grpc
from services.demo.scenes import generate_scene
from services.local.processes import LocalFleet, ServiceProcess
from tests.artifact_server import ArtifactServer, artifact_server
from tests.conftest import TEST_KEY
from tests.e2e.conftest import own_gateway
from tests.e2e.test_inference import SEEDS, encode
from tests.workflows.definitions import IMAGE, detect, detect_crop_classify, one_step

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
MAX_BYTES = 4 * 1024 * 1024
TOKEN = "s3cr3t-t0ken"


@pytest.fixture(scope="module")
def site() -> Iterator[ArtifactServer]:
    with artifact_server() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(fleet: LocalFleet) -> Iterator[ServiceProcess]:
    """A gateway of this module's own on the shared fleet: it fetches image URLs from 127.0.0.1 (the shared one,
    as by default, refuses private addresses)."""
    with own_gateway(fleet, {"FLEET_GATEWAY_URL_ALLOW_PRIVATE": "true", "FLEET_GATEWAY_URL_HOSTS": "127.0.0.1",
                             "FLEET_GATEWAY_URL_TIMEOUT_S": "5",
                             "FLEET_GATEWAY_MAX_MESSAGE_BYTES": str(MAX_BYTES)}) as process:
        yield process


@pytest.fixture(scope="module")
def http(gateway: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.http_url, timeout=60, headers=AUTH) as client:
        yield client


@pytest.fixture(scope="module")
def scene() -> bytes:
    return encode(generate_scene(SEEDS[3]).image)


def b64(data: bytes) -> dict:
    return {"type": "base64", "value": base64.b64encode(data).decode()}


def run(http: httpx.Client, definition: dict, images: dict | list, status: int = 200, **inputs) -> dict:
    reply = http.post("/workflows/run", json={"specification": definition, "inputs": {"image": images, **inputs}})
    assert reply.status_code == status, reply.text
    return reply.json()


def error_of(value: dict, step: str) -> str:
    """The message of an element's error marker, after checking its shape."""
    assert set(value) == {"error"} and value["error"]["step"] == step, value
    assert value["error"]["status"] == "INVALID_ARGUMENT" and f"step {step!r}" in value["error"]["message"]
    return value["error"]["message"]


# ---- what fails alone ------------------------------------------------------------------------------------------
def test_an_image_that_cannot_be_decoded_fails_only_its_own_outputs(http: httpx.Client, scene: bytes) -> None:
    definition = detect_crop_classify()
    definition["steps"].append({"type": "roboflow_core/bounding_box_visualization@v1", "name": "boxes",
                                "image": "$inputs.image", "predictions": "$steps.det.predictions"})
    definition["outputs"].append({"type": "JsonField", "name": "drawn", "selector": "$steps.boxes.image"})
    good, bad, also_good = run(http, definition, [b64(scene), b64(b"\xff\xd8\xff not a jpeg"), b64(scene)])["outputs"]
    assert len(also_good["classes"]) == len(good["classes"])  # the others complete
    assert len(good["classes"]) == len(good["detections"]["predictions"]) > 1 and good["drawn"]["type"] == "base64"
    error_of(bad["detections"], "det")
    # every later step reading the failed element answers the same marker: crops, their classes, the drawing
    assert bad["classes"] == bad["top"] == bad["detections"]
    assert bad["drawn"] == bad["detections"]
    # the same image alone fails the run, its status naming the step (every element of the step failed)
    body = run(http, definition, b64(b"\xff\xd8\xff not a jpeg"), status=400)
    assert body["status"] == "INVALID_ARGUMENT" and "step 'det'" in body["message"]


def test_an_undecodable_image_in_a_fused_chain_fails_only_its_own_outputs(http: httpx.Client, scene: bytes) -> None:
    """detect -> crop -> classify alone is one worker call per image (fused): an image the worker cannot decode
    still fails only its own outputs."""
    for _ in range(2):  # both models loaded on the worker, so the chain goes as one call
        run(http, detect_crop_classify(), b64(scene))
    good, bad = run(http, detect_crop_classify(), [b64(scene), b64(b"\xff\xd8\xff not a jpeg")])["outputs"]
    assert len(good["classes"]) == len(good["detections"]["predictions"]) > 1
    error_of(bad["detections"], "det")
    assert bad["classes"] == bad["top"] == bad["detections"]


def test_a_drawing_on_an_image_that_cannot_be_decoded_fails_only_that_branch(http: httpx.Client,
                                                                            scene: bytes) -> None:
    """The image is decoded by the gateway (the drawing reads its pixels): the drawing block's own failure."""
    definition = {"version": "1.0", "inputs": [IMAGE, {"type": "WorkflowImage", "name": "canvas"}], "steps": [
        detect(0.3),
        {"type": "BoundingBoxVisualization", "name": "boxes", "image": "$inputs.canvas",
         "predictions": "$steps.det.predictions"}],
        "outputs": [{"type": "JsonField", "name": n, "selector": s} for n, s in [
            ("drawn", "$steps.boxes.image"), ("found", "$steps.det.predictions")]]}
    # a PNG signature with nothing behind it: the worker never sees it, the gateway cannot decode it
    first, second = run(http, definition, [b64(scene), b64(scene)],
                        canvas=[b64(scene), b64(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)])["outputs"]
    assert first["drawn"]["type"] == "base64" and second["found"]["predictions"]
    assert "could not be decoded" in error_of(second["drawn"], "boxes")


def test_a_crop_whose_own_item_fails_fails_only_that_crops_branch(http: httpx.Client, scene: bytes) -> None:
    """Per crop, CLIP compares with texts that come from that crop (the class names found again inside it above a
    confidence): a crop where nothing is found has no texts, which fails that crop alone; the others are compared."""
    definition = {"version": "1.0", "inputs": [IMAGE, {"type": "WorkflowParameter", "name": "sure"}], "steps": [
        detect(0.5),
        {"type": "DynamicCrop", "name": "crop", "images": "$inputs.image", "predictions": "$steps.det.predictions"},
        {**detect(0.3, name="again"), "images": "$steps.crop.crops"},
        {"type": "DetectionsFilter", "name": "sure", "predictions": "$steps.again.predictions",
         "operations": [{"type": "DetectionsFilter", "filter_operation": {
             "type": "BinaryStatement", "left_operand": {"type": "DynamicOperand", "operations": [
                 {"type": "ExtractDetectionProperty", "property_name": "confidence"}]},
             "comparator": {"type": "(Number) >="},
             "right_operand": {"type": "DynamicOperand", "operand_name": "sure"}}}],
         "operations_parameters": {"sure": "$inputs.sure"}},
        {"type": "PropertyDefinition", "name": "names", "data": "$steps.sure.predictions",
         "operations": [{"type": "DetectionsPropertyExtract", "property_name": "class_name"}]},
        {"type": "ClipComparison", "name": "clip", "images": "$steps.crop.crops", "texts": "$steps.names.output"},
    ], "outputs": [{"type": "JsonField", "name": n, "selector": s} for n, s in [
        ("again", "$steps.again.predictions"), ("names", "$steps.names.output"), ("clip", "$steps.clip.similarity")]]}
    (first,) = run(http, definition, b64(scene), sure=0.0)["outputs"]
    best = [max((p["confidence"] for p in a["predictions"]), default=0.0) for a in first["again"]]
    assert len(best) > 1 and max(best) > min(best), best
    (out,) = run(http, definition, b64(scene), sure=(max(best) + min(best)) / 2)["outputs"]
    assert len(out["names"]) == len(out["clip"]) == len(best)
    for names, clip in zip(out["names"], out["clip"]):
        if names:
            assert isinstance(clip, list) and len(clip) == len(names) and all(-1 <= s <= 1 for s in clip)
        else:
            assert "texts" in error_of(clip, "clip")
    assert {bool(n) for n in out["names"]} == {True, False}  # crops of both kinds, each answered its own way


def test_run_wide_errors_still_fail_the_run_and_describe_says_each_blocks_scope(http: httpx.Client,
                                                                                 scene: bytes) -> None:
    body = run(http, one_step("no-such-model/1"), [b64(scene), b64(b"junk")], status=404)
    assert body["status"] == "NOT_FOUND" and "step 'det'" in body["message"]
    body = run(http, detect_crop_classify(), [b64(scene), b64(scene)], status=400, confidence="high")
    assert "step 'det'" in body["message"] and "field 'confidence'" in body["message"]
    scopes = {b["type"]: b["failure_scope"]["scope"] for b in http.post("/workflows/blocks/describe").json()["blocks"]}
    assert scopes["roboflow_core/roboflow_object_detection_model@v1"] == "element"
    assert scopes["roboflow_core/dynamic_crop@v1"] == scopes["roboflow_core/clip_comparison@v1"] == "element"
    assert scopes["roboflow_core/detections_filter@v1"] == scopes["roboflow_core/continue_if@v1"] == "run"


# ---- image URLs ------------------------------------------------------------------------------------------------
def test_image_urls_are_fetched_once_per_run_on_http_stored_and_grpc(fleet: LocalFleet, gateway: ServiceProcess,
                                                                      http: httpx.Client, site: ArtifactServer,
                                                                      scene: bytes) -> None:
    site.files["/scene.jpg"] = scene
    url = {"type": "url", "value": site.url("/scene.jpg")}
    definition = detect_crop_classify()
    definition["steps"].append({"type": "BoundingBoxVisualization", "name": "boxes", "image": "$inputs.image",
                                "predictions": "$steps.det.predictions"})
    expected = run(http, definition, b64(scene))["outputs"][0]
    before = site.gets["/scene.jpg"]
    (out,) = run(http, definition, url)["outputs"]
    assert site.gets["/scene.jpg"] == before + 1  # fetched once, though three steps read the image
    assert [p["class"] for p in out["detections"]["predictions"]] == [
        p["class"] for p in expected["detections"]["predictions"]]
    assert out["top"] == expected["top"]
    mixed = run(http, definition, [url, b64(scene)])["outputs"]
    assert [o["top"] for o in mixed] == [expected["top"], expected["top"]]

    admin = admin_pb2_grpc.AdminServiceStub(grpc.insecure_channel(gateway.address))
    admin.PutWorkflow(admin_pb2.PutWorkflowRequest(workspace="demo", workflow_id="by-url",
                                                   definition_json=json.dumps(definition)),
                      metadata=(("authorization", f"Bearer {fleet.admin_token}"),), timeout=30)
    stored = http.post("/demo/workflows/by-url", json={"inputs": {"image": url}})
    assert stored.status_code == 200, stored.text
    assert stored.json()["outputs"][0]["top"] == expected["top"]

    with grpc.insecure_channel(gateway.address) as channel:
        stub = workflow_pb2_grpc.WorkflowServiceStub(channel)
        request = workflow_pb2.RunWorkflowRequest(images={"image": workflow_pb2.WorkflowImages(
            images=[inference_pb2.Image(url=site.url("/scene.jpg"))])})
        json_format.ParseDict(definition, request.definition)
        reply = stub.RunWorkflow(request, metadata=(("authorization", f"Bearer {TEST_KEY}"),), timeout=60)
        top = json_format.MessageToDict(reply.outputs[0].fields["top"].json)
        assert top == expected["top"] and reply.outputs[0].fields["classes"].json.list_value
        request.images["image"].images[0].url = site.url(f"/missing.jpg?token={TOKEN}")
        with pytest.raises(grpc.RpcError) as info:
            stub.RunWorkflow(request, metadata=(("authorization", f"Bearer {TEST_KEY}"),), timeout=60)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "HTTP 404" in info.value.details()
        assert TOKEN not in info.value.details() and "input 'image' image 0" in info.value.details()


def test_refused_image_urls_are_clear_statuses_without_their_secrets(http: httpx.Client, site: ArtifactServer,
                                                                       scene: bytes) -> None:
    site.files["/scene.jpg"] = scene
    site.files["/huge.jpg"] = scene + b"\0" * MAX_BYTES
    port = site.httpd.server_port
    cases = [  # (url, HTTP status, in the message)
        (f"http://localhost:{port}/scene.jpg", 400, "allow-list"),  # resolves to loopback, but not an allowed host
        (site.url(f"/missing.jpg?token={TOKEN}"), 400, "HTTP 404"),
        (site.url("/huge.jpg"), 400, "larger than"),
        (f"http://user:{TOKEN}@127.0.0.1:{port}/scene.jpg", 400, "credentials"),
        ("ftp://127.0.0.1/scene.jpg", 400, "http"),
    ]
    for url, status, words in cases:
        body = run(http, one_step(), [b64(scene), {"type": "url", "value": url}], status=status)
        assert body["status"] == "INVALID_ARGUMENT" and words in body["message"], (url, body)
        assert TOKEN not in json.dumps(body), body
