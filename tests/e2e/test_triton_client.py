"""NVIDIA's ``tritonclient[grpc]`` from PyPI against the gateway's Open Inference Protocol, in a user's venv.

The venv holds tritonclient and the fleet's client install side by side (tritonclient pins
protobuf < 7, so this is also the co-installation check of the stubs: they import, warning-free,
on the protobuf pip chose for tritonclient, and no OpenCV comes with them). In one process it asks
the same questions through tritonclient and through fleet.v1 (FleetClient), for every task.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fleet.client import FleetClient
from fleet.v1 import gateway_pb2
from services.local.processes import LocalFleet
from tests.client_envs import client_venv, run_script
from tests.conftest import TEST_KEY

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "models" / "samples"
CASES = {"shapes-det/1": SAMPLES / "shapes-1.jpg", "shapes-seg/1": SAMPLES / "shapes-5.png",
         "shapes-cls/1": SAMPLES / "shapes-2.jpg"}

SCRIPT = """
import importlib.metadata as md, importlib.util, json, warnings
with warnings.catch_warnings():
    warnings.simplefilter("error")  # a gencode/runtime mismatch warning fails the case
    from fleet.client import FleetClient
    from fleet.v1 import gateway_pb2_grpc, inference_pb2
import numpy as np
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

ADDRESS, KEY, CASES = {address!r}, {key!r}, {cases!r}
headers = {{"authorization": "Bearer " + KEY}}
out = {{"protobuf": md.version("protobuf"), "opencv": importlib.util.find_spec("cv2") is not None}}
client = triton.InferenceServerClient(ADDRESS)
out["live"], out["ready"] = client.is_server_live(), client.is_server_ready()
out["server"] = client.get_server_metadata(as_json=True)
fleet = FleetClient(ADDRESS, KEY)
out["cases"] = {{}}
for model, path in CASES.items():
    name, version = model.split("/")
    meta = client.get_model_metadata(name, version, headers=headers, as_json=True)
    image = triton.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(np.array([open(path, "rb").read()], dtype=object))
    result = client.infer(name, [image], model_version=version, headers=headers, parameters={{"confidence": 0.3}})
    answer = fleet.infer(model, path, confidence=0.3)
    kind = answer.WhichOneof("result")
    case = {{"metadata": meta, "outputs": [o["name"] for o in result.get_response(as_json=True)["outputs"]],
             "image_size": result.as_numpy("image_size").tolist(), "kind": kind,
             "ready": client.is_model_ready(name, version, headers=headers)}}
    if kind == "classification":
        case["probabilities"] = result.as_numpy("probabilities").tolist()
        case["top"] = [t.decode() for t in result.as_numpy("top")]
        case["fleet"] = {{"top": answer.classification.top_class,
                         "predictions": [[p.class_id, p.confidence] for p in answer.classification.predictions]}}
    else:
        rows = (answer.object_detection.detections if kind == "object_detection"
                else [i.detection for i in answer.instance_segmentation.instances])
        case["boxes"] = result.as_numpy("boxes").tolist()
        case["scores"] = result.as_numpy("scores").tolist()
        case["class_names"] = [n.decode() for n in result.as_numpy("class_names")]
        case["fleet"] = {{"boxes": [[d.x - d.width / 2, d.y - d.height / 2, d.x + d.width / 2, d.y + d.height / 2]
                                   for d in rows], "scores": [d.confidence for d in rows],
                         "class_names": [d.class_name for d in rows]}}
        if kind == "instance_segmentation":
            case["polygons"] = [json.loads(p) for p in result.as_numpy("polygons")]
            case["fleet"]["polygons"] = [[[p.x, p.y] for p in i.points] for i in answer.instance_segmentation.instances]
    out["cases"][model] = case

def loaded():
    return sorted({{m.model_id for m in fleet.describe_models().models}})

repo = "shapes-det-v5"
out["before"] = {{"loaded": loaded(), "ready": client.is_model_ready(repo, "1", headers=headers)}}
client.load_model(repo + "/1", headers=headers)
out["after_load"] = {{"loaded": loaded(), "ready": client.is_model_ready(repo, "1", headers=headers),
                     "index": client.get_model_repository_index(headers=headers, as_json=True)}}
client.unload_model(repo + "/1", headers=headers)
out["after_unload"] = {{"loaded": loaded(), "ready": client.is_model_ready(repo, "1", headers=headers)}}
image = triton.InferInput("image", [1], "BYTES")
image.set_data_from_numpy(np.array([b"not used"], dtype=object))
try:
    client.infer("shapes-det", [image], model_version="1")
except InferenceServerException as exc:
    out["no_key"] = [exc.status(), exc.message()]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def answers(fleet: LocalFleet, tmp_path_factory: pytest.TempPathFactory) -> dict:
    python = client_venv("tritonclient", ["tritonclient[grpc]"])
    with FleetClient(fleet.gateway.address, TEST_KEY) as client:  # the fleet is shared: shapes-det-v5 is not loaded
        client.stub.ClearModels(gateway_pb2.ClearModelsRequest(), metadata=client.metadata, timeout=60)
    return run_script(python, SCRIPT.format(address=fleet.gateway.address, key=TEST_KEY,
                                            cases={k: str(v) for k, v in CASES.items()}),
                      tmp_path_factory.mktemp("triton"))


def test_tritonclient_speaks_to_the_fleet(answers: dict) -> None:
    out = answers
    print("tritonclient venv: protobuf", out["protobuf"])
    assert out["opencv"] is False  # neither tritonclient nor the fleet's client brings OpenCV
    assert out["live"] is True and out["ready"] is True
    assert out["server"]["name"] == "inference-fleet" and "model_repository" in out["server"]["extensions"]
    for model, case in out["cases"].items():
        meta = case["metadata"]
        assert meta["name"] == model.split("/")[0] and meta["versions"] == ["1"], model
        assert [i["name"] for i in meta["inputs"]] == ["image"] and meta["inputs"][0]["datatype"] == "BYTES"
        assert case["ready"] is True, model  # it has just served
        assert case["image_size"][0][0] > 0
        if case["kind"] == "classification":
            assert case["top"] == [case["fleet"]["top"]]
            probabilities = case["probabilities"][0]
            for class_id, confidence in case["fleet"]["predictions"]:
                assert probabilities[class_id] == pytest.approx(confidence, abs=1e-6)
            continue
        assert case["boxes"], f"{model}: no detections"
        np.testing.assert_allclose(case["boxes"], case["fleet"]["boxes"], atol=1e-3, err_msg=model)
        np.testing.assert_allclose(case["scores"], case["fleet"]["scores"], atol=1e-6, err_msg=model)
        assert case["class_names"] == case["fleet"]["class_names"]
        assert {"boxes", "scores", "class_ids", "class_names", "batch_index"} <= set(case["outputs"])
        if case["kind"] == "instance_segmentation":
            assert len(case["polygons"]) == len(case["fleet"]["polygons"])
            for ours, theirs in zip(case["polygons"], case["fleet"]["polygons"]):
                np.testing.assert_allclose(ours, theirs, atol=0.01)


def test_tritonclient_repository_calls_change_what_the_fleet_holds(answers: dict) -> None:
    out = answers
    assert "shapes-det-v5/1" not in out["before"]["loaded"] and out["before"]["ready"] is False
    assert "shapes-det-v5/1" in out["after_load"]["loaded"] and out["after_load"]["ready"] is True
    index = {(m["name"], m.get("version")): m.get("state") for m in out["after_load"]["index"]["models"]}
    assert index[("shapes-det-v5", "1")] == "READY"
    assert "shapes-det-v5/1" not in out["after_unload"]["loaded"] and out["after_unload"]["ready"] is False
    status, message = out["no_key"]
    assert status == "StatusCode.UNAUTHENTICATED" and "missing API key" in message
