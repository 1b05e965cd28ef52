"""Roboflow's ``inference-sdk`` (unchanged, from PyPI, in a client environment of its own) running workflows
on the gateway's HTTP port: ``run_workflow(specification=...)``, ``run_workflow(workspace_name=...,
workflow_id=...)`` (a stored workflow) and the legacy ``infer_from_workflow`` both ways."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from fleet.v1 import admin_pb2, admin_pb2_grpc
from services.local.processes import LocalFleet
from tests.client_envs import client_venv, run_script
from tests.conftest import TEST_KEY
from tests.workflows.definitions import detect_crop_classify

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[2] / "models" / "samples" / "shapes-1.jpg"

SCRIPT = """
import json
from inference_sdk import InferenceHTTPClient

URL, KEY, SPEC, PATH = {url!r}, {key!r}, json.loads({spec!r}), {path!r}
client = InferenceHTTPClient(api_url=URL, api_key=KEY)
out = {{}}
out["run"] = client.run_workflow(specification=SPEC, images={{"image": PATH}}, parameters={{"confidence": 0.4}})
out["two"] = client.run_workflow(specification=SPEC, images={{"image": [PATH, PATH]}},
                                 excluded_fields=["classes"])
out["legacy"] = client.infer_from_workflow(specification=SPEC, images={{"image": PATH}})
out["stored"] = client.run_workflow(workspace_name="demo", workflow_id="sdk-flow", images={{"image": PATH}},
                                    parameters={{"confidence": 0.4}})
out["stored_legacy"] = client.infer_from_workflow(workspace_name="demo", workflow_name="sdk-flow",
                                                  images={{"image": PATH}}, workflow_version_id="1")
try:
    client.run_workflow(specification={{**SPEC, "steps": [{{"type": "Nope", "name": "x"}}]}}, images={{"image": PATH}})
except Exception as exc:
    out["error"] = [type(exc).__name__, str(exc)]
print(json.dumps(out))
"""


def test_inference_sdk_runs_workflows_unchanged(fleet: LocalFleet, tmp_path: Path) -> None:
    stub = admin_pb2_grpc.AdminServiceStub(grpc.insecure_channel(fleet.gateway.address))
    stub.PutWorkflow(admin_pb2.PutWorkflowRequest(workspace="demo", workflow_id="sdk-flow",
                                                  definition_json=json.dumps(detect_crop_classify())),
                     metadata=(("authorization", f"Bearer {fleet.admin_token}"),), timeout=30)
    python = client_venv("inference-sdk", ["inference-sdk"])
    out = run_script(python, SCRIPT.format(url=fleet.gateway.http_url, key=TEST_KEY,
                                           spec=json.dumps(detect_crop_classify()), path=str(SAMPLE)), tmp_path)
    (first,) = out["run"]
    detections = first["detections"]["predictions"]
    assert detections and all(p["confidence"] >= 0.4 for p in detections)  # the parameter reached the step
    assert len(first["classes"]) == len(detections) and first["top"] == [c["top"] for c in first["classes"]]
    assert len(out["two"]) == 2 and "classes" not in out["two"][0] and out["two"][0]["top"]
    (legacy,) = out["legacy"]
    assert len(legacy["detections"]["predictions"]) >= len(detections)  # the default confidence, 0.3, is lower
    (stored,) = out["stored"]
    assert [p["class"] for p in stored["detections"]["predictions"]] == [p["class"] for p in detections]
    assert len(out["stored_legacy"][0]["classes"]) == len(legacy["detections"]["predictions"])
    name, message = out["error"]
    assert "400" in message and "step 'x'" in message, out["error"]
