"""Workflows over HTTP against a real fleet (registry, workers, gateway as processes; the demo ONNX models):
every block, branches, crops and nesting, coordinates, errors with the step named, bounds."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import cv2
import grpc
import httpx
import numpy as np
import pytest

from fleet.client import FleetClient
from fleet.v1 import admin_pb2, admin_pb2_grpc, inference_pb2
from services.demo.scenes import generate_scene
from services.local.processes import LocalFleet
from tests.artifact_server import artifact_server
from tests.conftest import PACKAGES, TEST_KEY
from tests.e2e.test_inference import SEEDS, encode
from tests.workflows.definitions import IMAGE, class_is, count_at_least, detect, detect_crop_classify, one_step

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}


@pytest.fixture(scope="module")
def http(fleet: LocalFleet) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fleet.gateway.http_url, timeout=60, headers=AUTH) as client:
        yield client


@pytest.fixture(scope="module")
def scene() -> bytes:
    return encode(generate_scene(SEEDS[3]).image)


def b64(data: bytes) -> dict:
    return {"type": "base64", "value": base64.b64encode(data).decode()}


def run(http: httpx.Client, definition: dict, image: bytes | list[bytes], status: int = 200, **inputs) -> dict:
    images = [b64(i) for i in image] if isinstance(image, list) else b64(image)
    reply = http.post("/workflows/run", json={"specification": definition, "inputs": {"image": images, **inputs}})
    assert reply.status_code == status, reply.text
    return reply.json()


def unb64(value: dict) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(base64.b64decode(value["value"]), np.uint8), cv2.IMREAD_COLOR)


def test_a_model_loading_does_not_hold_up_other_runs(fleet: LocalFleet, http: httpx.Client, scene: bytes) -> None:
    """A keypoint model whose weights download is held open by the test (a version of its own, so no worker has
    it cached): its run waits for that load on a worker while runs on a loaded model go on and finish, however
    long the load takes (the gateway's loop and the workers' other models never wait for a load)."""
    import concurrent.futures
    import hashlib
    import json
    import threading
    import uuid

    import onnx

    weights = onnx.load_from_string((PACKAGES / "shapes-pose" / "model.onnx").read_bytes())
    weights.doc_string = f"held download {uuid.uuid4()}"  # new bytes: a sha256 no worker has cached
    body = weights.SerializeToString()
    spec = json.loads((PACKAGES / "shapes-pose" / "model.json").read_text())
    spec["weights"].update(sha256=hashlib.sha256(body).hexdigest(), size_bytes=len(body))
    model_id = f"held-pose-{uuid.uuid4().hex[:8]}/1"
    admin = admin_pb2_grpc.AdminServiceStub(grpc.insecure_channel(fleet.gateway.address))
    admin_md = (("authorization", f"Bearer {fleet.admin_token}"),)
    released = threading.Event()
    with artifact_server() as server:
        server.files["/held/model.onnx"] = body
        server.gate = released
        admin.RegisterModel(admin_pb2.RegisterModelRequest(
            model_id=model_id, workspace="demo", spec_json=json.dumps(spec),
            artifact_uri=server.url("/held/model.onnx")), metadata=admin_md, timeout=30)
        try:
            run(http, one_step(), scene)  # the detector is loaded
            loading = one_step("shapes-det/1")
            loading["steps"].append({**detect(0.3, model=model_id, name="pose"),
                                     "type": "roboflow_core/roboflow_keypoint_detection_model@v1"})
            loading["outputs"].append({"type": "JsonField", "name": "pose", "selector": "$steps.pose.predictions"})
            with concurrent.futures.ThreadPoolExecutor(5) as pool:
                held = pool.submit(run, http, loading, scene)
                deadline = time.monotonic() + 30
                while not server.gets["/held/model.onnx"] and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert server.gets["/held/model.onnx"], "the keypoint model's download never started"
                others = [pool.submit(run, http, one_step(), scene) for _ in range(8)]
                for other in others:  # every other run answers while the load is still held open
                    assert other.result(timeout=60)["outputs"][0]["predictions"]["predictions"]
                assert not held.done(), "the held run finished before its model's download was let through"
                released.set()
                outputs = held.result(timeout=60)["outputs"][0]
            assert outputs["pose"]["predictions"] and outputs["predictions"]["predictions"]
            assert outputs["pose"]["predictions"][0]["keypoints"]
        finally:
            released.set()
            admin.DeleteModel(admin_pb2.DeleteModelRequest(model_id=model_id), metadata=admin_md, timeout=30)


def test_one_detector_step_answers_as_infer(http: httpx.Client, client: FleetClient, scene: bytes) -> None:
    reference = client.infer("shapes-det/1", scene, confidence=0.3).object_detection.detections
    body = run(http, one_step(), scene)
    assert body["profiler_trace"] == [] and len(body["outputs"]) == 1
    out = body["outputs"][0]["predictions"]
    assert out["image"]["width"] > 0 and len(out["predictions"]) == len(reference) > 1
    assert sorted(p["class"] for p in out["predictions"]) == sorted(d.class_name for d in reference)
    assert all(p["parent_id"] for p in out["predictions"])


def test_detect_crop_classify_batches_crops_and_keeps_parent_child_structure(http: httpx.Client, client: FleetClient,
                                                                            scene: bytes) -> None:
    body = run(http, detect_crop_classify(), [scene, scene])
    assert len(body["outputs"]) == 2  # one object per input image
    out = body["outputs"][0]
    detections = out["detections"]["predictions"]
    assert len(out["classes"]) == len(detections) == len(out["top"]) > 1  # one classification per crop
    assert [c["parent_id"] for c in out["classes"]] == [d["detection_id"] for d in detections]
    assert all(c["prediction_type"] == "classification" and c["top"] for c in out["classes"])
    assert out["top"] == [c["top"] for c in out["classes"]]
    # the classifier on a crop answers what it answers on the same crop sent by itself
    d = detections[0]
    pixels = cv2.imdecode(np.frombuffer(scene, np.uint8), cv2.IMREAD_COLOR)
    x0, y0 = max(0, round(d["x"] - d["width"] / 2)), max(0, round(d["y"] - d["height"] / 2))
    crop = pixels[y0:round(d["y"] + d["height"] / 2), x0:round(d["x"] + d["width"] / 2)]
    alone = client.infer("shapes-cls/1", cv2.imencode(".png", crop)[1].tobytes()).classification
    assert out["classes"][0]["top"] == alone.top_class
    assert out["classes"][0]["image"] == {"width": crop.shape[1], "height": crop.shape[0]}


def test_detections_on_crops_map_to_parent_coordinates_when_asked(http: httpx.Client, scene: bytes) -> None:
    definition = {"version": "1.0", "inputs": [IMAGE], "steps": [
        detect(0.3),
        {"type": "DetectionOffset", "name": "grow", "predictions": "$steps.det.predictions", "offset_width": 300,
         "offset_height": 300},
        {"type": "DynamicCrop", "name": "crop", "images": "$inputs.image", "predictions": "$steps.grow.predictions"},
        {**detect(0.3, name="inner"), "images": "$steps.crop.crops"},
    ], "outputs": [
        {"type": "JsonField", "name": "outer", "selector": "$steps.det.predictions"},
        {"type": "JsonField", "name": "grown", "selector": "$steps.grow.predictions"},
        {"type": "JsonField", "name": "own", "selector": "$steps.inner.predictions"},
        {"type": "JsonField", "name": "parent", "selector": "$steps.inner.predictions",
         "coordinates_system": "parent"},
    ]}
    out = run(http, definition, scene)["outputs"][0]
    outer, grown = out["outer"]["predictions"], out["grown"]["predictions"]
    assert len(out["own"]) == len(outer) > 1  # one answer per crop
    found_again = 0
    for i, (own, parent) in enumerate(zip(out["own"], out["parent"])):
        g = grown[i]
        assert g["width"] > outer[i]["width"] and own["image"]["width"] == round(g["x"] + g["width"] / 2) - round(
            g["x"] - g["width"] / 2)
        x0, y0 = round(g["x"] - g["width"] / 2), round(g["y"] - g["height"] / 2)  # the crop's corner in the image
        for a, b in zip(own["predictions"], parent["predictions"]):
            assert (b["x"] - a["x"], b["y"] - a["y"]) == (pytest.approx(x0), pytest.approx(y0))
            assert a["parent_id"] == b["parent_id"] == outer[i]["detection_id"]
        found_again += any(p["class"] == outer[i]["class"] and abs(p["x"] - outer[i]["x"]) < 8
                           and abs(p["y"] - outer[i]["y"]) < 8 for p in parent["predictions"])
    assert found_again >= 1  # an object found again inside its crop sits where the detector saw it in the image


def test_filter_property_consensus_condition_and_visualisation(http: httpx.Client, scene: bytes) -> None:
    first = run(http, one_step(), scene)["outputs"][0]["predictions"]["predictions"]
    outer_class = first[0]["class"]
    keep = [p for p in first if p["class"] == outer_class]
    definition = {"version": "1.0", "inputs": [IMAGE, {"type": "WorkflowParameter", "name": "wanted"}], "steps": [
        detect(0.3),
        {**detect(0.3, model="shapes-det-v5/1", name="det5")},
        {"type": "roboflow_core/detections_filter@v1", "name": "only", "predictions": "$steps.det.predictions",
         "operations": [{"type": "DetectionsFilter", "filter_operation": {
             "type": "StatementGroup", "operator": "and", "statements": [
                 {**class_is("x"), "right_operand": {"type": "DynamicOperand", "operand_name": "wanted"}},
                 {"type": "BinaryStatement", "left_operand": {"type": "DynamicOperand", "operations": [
                     {"type": "ExtractDetectionProperty", "property_name": "size"}]},
                  "comparator": {"type": "(Number) >"}, "right_operand": {"type": "StaticOperand", "value": 0}}]}}],
         "operations_parameters": {"wanted": "$inputs.wanted"}},
        {"type": "roboflow_core/property_definition@v1", "name": "count", "data": "$steps.only.predictions",
         "operations": [{"type": "SequenceLength"}]},
        {"type": "roboflow_core/detections_consensus@v1", "name": "vote", "required_votes": 2,
         "predictions_batches": ["$steps.det.predictions", "$steps.det5.predictions"]},
        {"type": "roboflow_core/continue_if@v1", "name": "if_many", "condition_statement": count_at_least("n", 99),
         "evaluation_parameters": {"n": "$steps.det.predictions"}, "next_steps": ["$steps.never"]},
        {"type": "roboflow_core/bounding_box_visualization@v1", "name": "never", "image": "$inputs.image",
         "predictions": "$steps.det.predictions"},
        {"type": "ContinueIf", "name": "if_any", "condition_statement": count_at_least("n", 1),
         "evaluation_parameters": {"n": "$steps.det.predictions"}, "next_steps": ["$steps.sometimes"]},
        {"type": "PolygonVisualization", "name": "sometimes", "image": "$inputs.image",
         "predictions": "$steps.seg.predictions"},
        {"type": "InstanceSegmentationModel", "name": "seg", "images": "$inputs.image", "model_id": "shapes-seg/1"},
        {"type": "roboflow_core/bounding_box_visualization@v1", "name": "boxes", "image": "$inputs.image",
         "predictions": "$steps.only.predictions"},
        {"type": "roboflow_core/label_visualization@v1", "name": "labels", "image": "$steps.boxes.image",
         "predictions": "$steps.only.predictions", "text": "Class and Confidence"},
    ], "outputs": [{"type": "JsonField", "name": n, "selector": s} for n, s in [
        ("only", "$steps.only.predictions"), ("count", "$steps.count.output"), ("vote", "$steps.vote.*"),
        ("never", "$steps.never.image"), ("sometimes", "$steps.sometimes.image"),
        ("drawn", "$steps.labels.image")]]}
    out = run(http, definition, scene, wanted=outer_class)["outputs"][0]
    assert [(p["class"], round(p["x"])) for p in out["only"]["predictions"]] == [(p["class"], round(p["x"]))
                                                                                 for p in keep]
    assert out["count"] == len(keep)
    assert out["vote"]["object_present"] is True and len(out["vote"]["predictions"]["predictions"]) >= 1
    assert 0 < out["vote"]["presence_confidence"] <= 1
    assert out["never"] is None  # the condition did not hold: the gated step did not run
    assert unb64(out["sometimes"]).shape[:2] == (out["only"]["image"]["height"], out["only"]["image"]["width"])
    drawn, original = unb64(out["drawn"]), cv2.imdecode(np.frombuffer(scene, np.uint8), cv2.IMREAD_COLOR)
    assert drawn.shape == original.shape and np.abs(drawn.astype(int) - original).mean() > 0.1


def test_segmentation_keypoints_and_multi_label_blocks(http: httpx.Client, scene: bytes) -> None:
    definition = {"version": "1.0", "inputs": [IMAGE], "steps": [
        {"type": "InstanceSegmentationModel", "name": "seg", "images": "$inputs.image", "model_id": "shapes-seg/1"},
        {"type": "roboflow_core/polygon_visualization@v1", "name": "outline", "image": "$inputs.image",
         "predictions": "$steps.seg.predictions"},
        {"type": "roboflow_core/roboflow_keypoint_detection_model@v1", "name": "pose", "images": "$inputs.image",
         "model_id": "shapes-pose/1"},
        {"type": "roboflow_core/roboflow_multi_label_classification_model@v1", "name": "labels",
         "images": "$inputs.image", "model_id": "shapes-cls/1"},
    ], "outputs": [{"type": "JsonField", "name": n, "selector": f"$steps.{n}.{o}"} for n, o in [
        ("seg", "predictions"), ("outline", "image"), ("pose", "predictions"), ("labels", "predictions")]]}
    out = run(http, definition, scene)["outputs"][0]
    assert out["seg"]["predictions"] and all(len(p["points"]) >= 3 for p in out["seg"]["predictions"])
    assert unb64(out["outline"]).shape[:2] == (out["seg"]["image"]["height"], out["seg"]["image"]["width"])
    assert all("keypoints" in p for p in out["pose"]["predictions"])
    assert isinstance(out["labels"]["predictions"], dict) and isinstance(out["labels"]["predicted_classes"], list)


def test_a_failing_step_names_itself_with_its_own_status(http: httpx.Client, scene: bytes) -> None:
    body = run(http, one_step("no-such-model/1"), scene, status=404)
    assert body["status"] == "NOT_FOUND" and "step 'det'" in body["message"]
    body = run(http, one_step("shapes-cls/1"), scene, status=400)
    assert "step 'det'" in body["message"] and "classification" in body["message"]
    body = run(http, one_step(), b"not an image", status=400)
    assert body["status"] == "INVALID_ARGUMENT" and "step 'det'" in body["message"]


def test_bad_input_and_bounds_are_clear_statuses(http: httpx.Client, scene: bytes) -> None:
    reply = http.post("/workflows/run", json={"specification": one_step(), "inputs": {}})
    assert reply.status_code == 400 and "input 'image' is missing" in reply.json()["message"]
    body = run(http, one_step(), [scene] * 17, status=400)
    assert "17 images" in body["message"] and "at most 16" in body["message"]
    definition = detect_crop_classify()
    definition["steps"][2]["images"] = "$inputs.image"  # wrong level for what its property reads is fine; a typo:
    definition["steps"][3]["data"] = "$steps.cls.nothing"
    body = run(http, definition, scene, status=400)
    assert "step 'top'" in body["message"] and "no output 'nothing'" in body["message"]


def test_validate_describe_schema_and_legacy_routes(http: httpx.Client, scene: bytes) -> None:
    assert http.post("/workflows/validate", json=detect_crop_classify()).json() == {"status": "ok"}
    assert http.post("/workflows/validate", json={"specification": one_step()}).json() == {"status": "ok"}
    bad = http.post("/workflows/validate", json={**one_step(), "steps": [{"type": "Nope", "name": "x"}]})
    assert bad.status_code == 400 and "step 'x'" in bad.json()["message"]
    blocks = http.post("/workflows/blocks/describe").json()["blocks"]
    crop = next(b for b in blocks if b["type"] == "roboflow_core/dynamic_crop@v1")
    assert "DynamicCrop" in crop["aliases"] and crop["outputs"] == [{"name": "crops", "kind": "image"}]
    schema = http.get("/workflows/definition/schema").json()["schema"]
    assert schema["properties"]["version"] == {"enum": ["1.0"]}
    legacy = http.post("/infer/workflows", json={"specification": one_step(), "inputs": {"image": b64(scene)},
                                                 "excluded_fields": ["predictions"]})
    assert legacy.status_code == 200 and legacy.json()["outputs"] == [{}]


def test_runs_and_steps_are_counted(fleet: LocalFleet, http: httpx.Client, scene: bytes) -> None:
    from tests.e2e.probes import metric

    def counted(name: str, **labels: str) -> float:  # light runs count in the gateway, the others in its engine
        return sum(metric(p, name, **labels) for p in {fleet.gateway.name: fleet.gateway,
                                                        fleet.gateway.workflows.name: fleet.gateway.workflows}.values())

    before = counted("fleet_workflow_runs_total", workflow="inline", outcome="OK")
    failed = counted("fleet_workflow_runs_total", workflow="inline", outcome="NOT_FOUND")
    run(http, one_step(), scene)
    run(http, one_step("no-such-model/1"), scene, status=404)
    assert counted("fleet_workflow_runs_total", workflow="inline", outcome="OK") == before + 1
    assert counted("fleet_workflow_runs_total", workflow="inline", outcome="NOT_FOUND") == failed + 1
    assert counted("fleet_workflow_step_seconds_count", block="roboflow_core/roboflow_object_detection_model@v1") >= 1


def test_crops_of_crops_nest_and_map_through_both_levels(http: httpx.Client, scene: bytes) -> None:
    definition = {"version": "1.0", "inputs": [IMAGE], "steps": [
        detect(0.3),
        {"type": "DetectionOffset", "name": "grow", "predictions": "$steps.det.predictions", "offset_width": 300,
         "offset_height": 300},
        {"type": "DynamicCrop", "name": "outer", "images": "$inputs.image", "predictions": "$steps.grow.predictions"},
        {**detect(0.3, name="again"), "images": "$steps.outer.crops"},
        {"type": "DynamicCrop", "name": "inner", "images": "$steps.outer.crops",
         "predictions": "$steps.again.predictions"},
        {"type": "ClassificationModel", "name": "cls", "images": "$steps.inner.crops", "model_id": "shapes-cls/1"},
    ], "outputs": [
        {"type": "JsonField", "name": "again", "selector": "$steps.again.predictions"},
        {"type": "JsonField", "name": "again_parent", "selector": "$steps.again.predictions",
         "coordinates_system": "parent"},
        {"type": "JsonField", "name": "classes", "selector": "$steps.cls.predictions"},
        {"type": "JsonField", "name": "crops", "selector": "$steps.inner.crops"},
    ]}
    out = run(http, definition, scene)["outputs"][0]
    assert len(out["classes"]) == len(out["again"]) > 1  # per outer crop ...
    for found, classes, crops in zip(out["again"], out["classes"], out["crops"]):
        assert len(classes) == len(crops) == len(found["predictions"])  # ... a list per inner crop
        for p, c, crop in zip(found["predictions"], classes, crops):
            assert c["parent_id"] == p["detection_id"]  # the inner crop is the detection's; it was cut from
            assert crop["parent_id"] == p["parent_id"]   # the outer crop the detection was found in
            assert unb64(crop).shape[:2] == (c["image"]["height"], c["image"]["width"])
    total = sum(len(f["predictions"]) for f in out["again"])
    assert total == sum(len(c) for c in out["classes"]) > 0
    own, parent = out["again"][0]["predictions"], out["again_parent"][0]["predictions"]
    assert all(b["x"] >= a["x"] and b["y"] >= a["y"] for a, b in zip(own, parent))


def test_clip_comparison_on_crops_and_ocr(http: httpx.Client, client: FleetClient, scene: bytes) -> None:
    from tests.e2e.foundation import OCR_LINE, text_image  # noqa: PLC0415

    prompts = ["a circle", "a rectangle", "a triangle"]
    definition = {"version": "1.0", "inputs": [IMAGE, {"type": "WorkflowParameter", "name": "prompts"}], "steps": [
        detect(0.5),
        {"type": "DynamicCrop", "name": "crop", "images": "$inputs.image", "predictions": "$steps.det.predictions"},
        {"type": "roboflow_core/clip_comparison@v1", "name": "whole", "images": "$inputs.image",
         "texts": "$inputs.prompts", "version": "ViT-B-16"},
        {"type": "ClipComparison", "name": "each", "images": "$steps.crop.crops", "texts": "$inputs.prompts"},
    ], "outputs": [{"type": "JsonField", "name": n, "selector": s} for n, s in [
        ("whole", "$steps.whole.similarity"), ("each", "$steps.each.*"), ("det", "$steps.det.predictions")]]}
    out = run(http, definition, scene, prompts=prompts)["outputs"][0]
    reference = client.stub.Infer(inference_pb2.InferRequest(
        model_id="clip", image=inference_pb2.Image(encoded=scene),
        inputs={"text": inference_pb2.InputValue(texts=inference_pb2.Texts(values=prompts))}),
        metadata=client.metadata, timeout=60).embedding.similarities
    assert out["whole"] == pytest.approx([s.similarity for s in reference], abs=1e-5)  # as the model answers
    assert len(out["each"]) == len(out["det"]["predictions"]) > 1
    for each, d in zip(out["each"], out["det"]["predictions"]):
        assert len(each["similarity"]) == 3 and each["parent_id"] == d["detection_id"]
        assert each["prediction_type"] == "embeddings-comparison"

    reading = {"version": "1.0", "inputs": [IMAGE], "steps": [{"type": "OCRModel", "name": "ocr",
                                                               "images": "$inputs.image"}],
               "outputs": [{"type": "JsonField", "name": "ocr", "selector": "$steps.ocr.*"}]}
    (page,) = run(http, reading, text_image())["outputs"]
    assert page["ocr"]["result"] == OCR_LINE and page["ocr"]["prediction_type"] == "ocr"
    assert page["ocr"]["predictions"]["predictions"][0]["class"] == OCR_LINE
    wrong = {**reading, "steps": [{**reading["steps"][0], "model_id": "shapes-det/1"}]}
    body = run(http, wrong, text_image(), status=400)
    assert "step 'ocr'" in body["message"] and "ocr models" in body["message"]


def test_a_parameter_of_the_wrong_type_is_refused_naming_step_field_and_input(http: httpx.Client,
                                                                               scene: bytes) -> None:
    body = run(http, detect_crop_classify(), scene, status=400, confidence="high")
    assert body["status"] == "INVALID_ARGUMENT"
    assert "step 'det'" in body["message"] and "field 'confidence'" in body["message"] and "'high'" in body["message"]


def test_model_steps_are_background_calls_and_infer_is_not(fleet: LocalFleet, http: httpx.Client, client: FleetClient,
                                                             scene: bytes) -> None:
    """A workflow's model steps reach the worker as background calls (its background lane runs them); a plain
    ``Infer`` stays interactive."""
    from tests.e2e.probes import metric

    def background_runs() -> float:
        return sum(metric(w, "fleet_worker_background_runs_total") for w in fleet.worker_processes)

    run(http, one_step(), scene)  # loaded, settled
    before = background_runs()
    client.infer("shapes-det/1", scene, confidence=0.3)
    assert background_runs() == before
    run(http, detect_crop_classify(), scene)
    assert background_runs() >= before + 2  # the detector on the image, the classifier on its crops
