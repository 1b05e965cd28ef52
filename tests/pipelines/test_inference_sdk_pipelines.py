"""inference-sdk's pipeline methods, unchanged, from a client environment of their own, against the pipelines
service's stream manager routes: initialise (a workflow of one model step), list, status, pause, resume,
consume and terminate, with the reference server's response shapes; a stored workflow named by
workspace_name and workflow_id."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from fleet.v1 import admin_pb2, admin_pb2_grpc
from services.local.processes import LocalFleet
from tests.client_envs import client_venv, run_script
from tests.conftest import OTHER_KEY, TEST_KEY
from tests.workflows.definitions import one_step

pytestmark = pytest.mark.slow

SCRIPT = """
import json, time
from inference_sdk import InferenceHTTPClient
from inference_sdk.http.errors import HTTPCallErrorError

URL, KEY, OTHER, VIDEO = {url!r}, {key!r}, {other!r}, {video!r}
client = InferenceHTTPClient(api_url=URL, api_key=KEY)
workflow = {{"version": "1.0", "inputs": [{{"type": "WorkflowImage", "name": "image"}}],
             "steps": [{{"type": "roboflow_core/roboflow_object_detection_model@v1", "name": "model",
                         "images": "$inputs.image", "model_id": "shapes-det/1"}}],
             "outputs": [{{"type": "JsonField", "name": "predictions", "selector": "$steps.model.predictions"}}]}}
out = {{}}
started = client.start_inference_pipeline_with_workflow(video_reference=VIDEO, workflow_specification=workflow,
                                                         max_fps=5, results_buffer_size=16)
pid = started["context"]["pipeline_id"]
out["initialise"] = started
out["list"] = client.list_inference_pipelines()
results, metadata = [], []
deadline = time.time() + 30
while len(results) < 3 and time.time() < deadline:
    consumed = client.consume_inference_pipeline_result(pid)
    results += consumed["outputs"]
    metadata += consumed["frames_metadata"]
    time.sleep(0.2)
out["results"], out["metadata"] = results, metadata
out["status"] = client.get_inference_pipeline_status(pid)
out["pause"] = client.pause_inference_pipeline(pid)
out["resume"] = client.resume_inference_pipeline(pid)
try:
    InferenceHTTPClient(api_url=URL, api_key=OTHER).get_inference_pipeline_status(pid)
    out["foreign"] = "answered"
except HTTPCallErrorError as exc:
    out["foreign"] = exc.status_code
out["terminate"] = client.terminate_inference_pipeline(pid)
out["after"] = client.list_inference_pipelines()
named = client.start_inference_pipeline_with_workflow(video_reference=VIDEO, workspace_name="demo",
                                                       workflow_id="sdk-pipe", max_fps=5)
named_id, out["named"] = named["context"]["pipeline_id"], []
deadline = time.time() + 30
while len(out["named"]) < 2 and time.time() < deadline:
    out["named"] += client.consume_inference_pipeline_result(named_id)["outputs"]
    time.sleep(0.2)
client.terminate_inference_pipeline(named_id)
try:
    client.start_inference_pipeline_with_workflow(video_reference=VIDEO, workspace_name="demo",
                                                  workflow_id="nothing-here")
    out["unknown"] = "started"
except HTTPCallErrorError as exc:
    out["unknown"] = exc.status_code
print(json.dumps(out))
"""


def test_inference_sdk_drives_a_pipeline_unchanged(fleet: LocalFleet, videos: Path, tmp_path: Path) -> None:
    admin = admin_pb2_grpc.AdminServiceStub(grpc.insecure_channel(fleet.gateway.address))
    admin.PutWorkflow(admin_pb2.PutWorkflowRequest(workspace="demo", workflow_id="sdk-pipe",
                                                   definition_json=json.dumps(one_step())),
                      metadata=(("authorization", f"Bearer {fleet.admin_token}"),), timeout=30)
    python = client_venv("inference-sdk", ["inference-sdk"])
    replica = fleet.pipelines_processes[0]
    out = run_script(python, SCRIPT.format(url=f"http://127.0.0.1:{replica.http_port}", key=TEST_KEY,
                                           other=OTHER_KEY, video=str(videos / "long.avi")), tmp_path)
    pid = out["initialise"]["context"]["pipeline_id"]
    assert out["initialise"]["status"] == "success" and pid
    assert pid in out["list"]["pipelines"]
    assert len(out["results"]) >= 3 and len(out["results"]) == len(out["metadata"])
    assert all(isinstance(r["predictions"]["predictions"], list) for r in out["results"])
    assert any(r["predictions"]["predictions"] for r in out["results"])
    assert {m["source_id"] for m in out["metadata"]} == {"0"} and all(m["frame_timestamp"] for m in out["metadata"])
    report = out["status"]["report"]
    assert {"video_source_status_updates", "latency_reports", "inference_throughput", "sources_metadata"} <= set(report)
    assert report["sources_metadata"][0]["source_properties"]["width"] == 640
    assert out["pause"]["status"] == out["resume"]["status"] == out["terminate"]["status"] == "success"
    assert out["foreign"] == 404
    assert pid not in out["after"]["pipelines"]
    # A stored workflow, named as the SDK names it (workspace_name, workflow_id); an unknown one: 404.
    assert len(out["named"]) >= 2 and all(isinstance(r["predictions"]["predictions"], list) for r in out["named"])
    assert out["unknown"] == 404
