"""Roboflow's ``inference-sdk`` (InferenceHTTPClient, unchanged) from PyPI against the gateway's HTTP port,
and ``curl`` on the legacy route.

The SDK's venv holds it and the fleet's client install side by side: the SDK brings opencv-python,
the fleet's client brings no OpenCV, so ``cv2`` keeps working there (it broke when the fleet's
client pulled opencv-python-headless). Both SDK modes are used: v0 (the legacy
``POST /{project}/{version}?api_key=`` route) and v1 (``/model/registry``, ``/model/add`` and
``/infer/<task>``), for detection, segmentation and classification; predictions equal the gRPC answer.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from fleet.client import FleetClient
from services.local.processes import LocalFleet
from tests.client_envs import client_venv, run_script
from tests.conftest import TEST_KEY

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "models" / "samples"
CASES = {"shapes-det/1": SAMPLES / "shapes-1.jpg", "shapes-seg/1": SAMPLES / "shapes-5.png",
         "shapes-cls/1": SAMPLES / "shapes-2.jpg"}
CONFIDENCE = 0.3

SCRIPT = """
import importlib.metadata as md, json, warnings
with warnings.catch_warnings():
    warnings.simplefilter("error")
    from fleet.client import FleetClient  # the fleet's stubs and client import beside the SDK
import cv2
import numpy as np
from inference_sdk import InferenceConfiguration, InferenceHTTPClient

URL, ADDRESS, KEY, CASES, CONFIDENCE = {url!r}, {address!r}, {key!r}, {cases!r}, {confidence!r}
with FleetClient(ADDRESS, KEY) as fleet:  # a real fleet.v1 call from the same environment
    grpc_detections = len(fleet.infer("shapes-det/1", CASES["shapes-det/1"], confidence=CONFIDENCE)
                          .object_detection.detections)
image = cv2.imread(CASES["shapes-det/1"])
ok, png = cv2.imencode(".png", image)
out = {{"cv2": [cv2.__version__, image.shape[1], image.shape[0], bool(ok)],
        "opencv": sorted(d.metadata["Name"].lower() for d in md.distributions()
                         if d.metadata["Name"].lower().startswith("opencv"))}}
client = InferenceHTTPClient(api_url=URL, api_key=KEY)
client.configure(InferenceConfiguration(confidence_threshold=CONFIDENCE, api_key_transport="legacy"))
out["info"] = client.get_server_info().to_dict()
for mode in ("v0", "v1"):
    client.select_api_v0() if mode == "v0" else client.select_api_v1()
    out[mode] = {{model: client.infer(path, model_id=model) for model, path in CASES.items()}}
out["numpy"] = client.infer(image, model_id="shapes-det/1")  # the SDK encodes it with its own cv2
out["registry"] = client.list_loaded_models().to_dict()
out["grpc_detections"] = grpc_detections
print(json.dumps(out))
"""


def _close(a: float, b: float, tol: float = 1e-3) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(b))


def assert_same_predictions(body: dict, reference, label: str) -> None:  # noqa: ANN001 - a fleet.v1 InferResponse
    assert body["image"] == {"width": reference.image_width, "height": reference.image_height}, label
    assert body["inference_id"] and isinstance(body["time"], float), label
    kind = reference.WhichOneof("result")
    if kind == "classification":
        c = reference.classification
        assert body["top"] == c.top_class and _close(body["confidence"], c.top_confidence), label
        assert [(p["class"], p["class_id"]) for p in body["predictions"]] == [(p.class_name, p.class_id)
                                                                               for p in c.predictions], label
        assert all(_close(p["confidence"], q.confidence) for p, q in zip(body["predictions"], c.predictions)), label
        return
    rows = (list(reference.object_detection.detections) if kind == "object_detection"
            else list(reference.instance_segmentation.instances))
    assert len(body["predictions"]) == len(rows) > 0, label
    for got, want in zip(body["predictions"], rows):
        d = want.detection if kind == "instance_segmentation" else want
        assert (got["class"], got["class_id"]) == (d.class_name, d.class_id), label
        for key in ("x", "y", "width", "height", "confidence"):
            assert _close(got[key], getattr(d, key)), f"{label}: {key} {got[key]} vs {getattr(d, key)}"
        assert got["detection_id"], label
        if kind == "instance_segmentation":
            assert len(got["points"]) == len(want.points) >= 3, label
            assert all(_close(p["x"], q.x) and _close(p["y"], q.y) for p, q in zip(got["points"], want.points)), label


@pytest.fixture(scope="module")
def reference(fleet: LocalFleet) -> dict:
    with FleetClient(fleet.gateway.address, TEST_KEY) as client:
        return {model: client.infer(model, path, confidence=CONFIDENCE) for model, path in CASES.items()}


def test_inference_sdk_in_both_modes_equals_grpc(fleet: LocalFleet, reference: dict, tmp_path: Path) -> None:
    python = client_venv("inference-sdk", ["inference-sdk"])
    out = run_script(python, SCRIPT.format(url=fleet.gateway.http_url, address=fleet.gateway.address, key=TEST_KEY,
                                           confidence=CONFIDENCE,
                                           cases={k: str(v) for k, v in CASES.items()}), tmp_path)
    version, width, height, encoded = out["cv2"]
    assert (width, height, encoded) == (800, 605, True), out["cv2"]
    assert out["opencv"] == ["opencv-python"], out["opencv"]  # the SDK's, and nothing of ours beside it
    assert out["info"]["name"] == "inference-fleet" and out["info"]["uuid"]
    for mode in ("v0", "v1"):
        for model in CASES:
            assert_same_predictions(out[mode][model], reference[model], f"{mode} {model}")
    assert out["numpy"]["predictions"], "no detections on the SDK-encoded numpy image"
    assert out["grpc_detections"] == len(reference["shapes-det/1"].object_detection.detections)
    loaded = {m["model_id"]: m for m in out["registry"]["models"]}
    assert loaded["shapes-det/1"]["task_type"] == "object-detection"
    assert loaded["shapes-seg/1"]["input_width"] > 0


def test_curl_on_the_legacy_route(fleet: LocalFleet, reference: dict, tmp_path: Path) -> None:
    sample = CASES["shapes-det/1"]
    body = tmp_path / "image.b64"
    body.write_bytes(base64.b64encode(sample.read_bytes()))
    url = f"{fleet.gateway.http_url}/shapes-det/1?api_key={TEST_KEY}&confidence={CONFIDENCE}"
    as_base64 = ["curl", "-sS", "--fail-with-body", "-X", "POST", url, "-H",
                 "Content-Type: application/x-www-form-urlencoded", "--data-binary", f"@{body}"]
    as_file = ["curl", "-sS", "--fail-with-body", "-X", "POST", url, "-F", f"file=@{sample}"]
    for command in (as_base64, as_file):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        assert_same_predictions(json.loads(result.stdout), reference["shapes-det/1"], command[-1])
    percent = subprocess.run(["curl", "-sS", "-X", "POST", url.replace(f"confidence={CONFIDENCE}", "confidence=30"),
                              "--data-binary", f"@{body}"], capture_output=True, text=True, timeout=60)
    assert_same_predictions(json.loads(percent.stdout), reference["shapes-det/1"], "confidence as a percentage")
    image = subprocess.run(["curl", "-sS", "-X", "POST", f"{url}&format=image", "--data-binary", f"@{body}",
                            "-o", str(tmp_path / "annotated.jpg"), "-w", "%{http_code} %{content_type}"],
                           capture_output=True, text=True, timeout=60)
    assert image.stdout == "200 image/jpeg" and (tmp_path / "annotated.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    denied = subprocess.run(["curl", "-sS", "-X", "POST", url.replace(TEST_KEY, "fk_nope"), "--data-binary",
                             f"@{body}", "-w", "\n%{http_code}"], capture_output=True, text=True, timeout=60)
    payload, code = denied.stdout.rsplit("\n", 1)
    assert code == "401" and "not valid" in json.loads(payload)["message"]
