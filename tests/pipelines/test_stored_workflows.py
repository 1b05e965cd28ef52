"""Pipelines running workflows through the gateway: a stored workflow (named as inference-sdk names it), pinned
to the version current at initialise; and initialise refusing, before any pipeline exists, what the gateway's
ValidateWorkflow refuses (a bad definition, an unknown model, an unknown or another workspace's stored
workflow) or what frames cannot feed."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import grpc
import httpx
import pytest

from fleet.v1 import admin_pb2, admin_pb2_grpc, pipelines_pb2, workflow_pb2
from services.local.processes import LocalFleet
from tests.conftest import OTHER_KEY, TEST_KEY
from tests.pipelines.client import auth, stub
from tests.workflows.definitions import one_step

pytestmark = pytest.mark.slow


def boxes() -> dict:
    """The same model step, its output named differently: tells the versions apart in results."""
    return {**one_step(), "outputs": [{"type": "JsonField", "name": "boxes", "selector": "$steps.det.predictions"}]}


class Manager:
    """The stream manager's HTTP routes of one replica, as a caller."""

    def __init__(self, fleet: LocalFleet, video: Path) -> None:
        self.base = f"http://127.0.0.1:{fleet.pipelines_processes[0].http_port}/inference_pipelines"
        self.video = str(video)

    def initialise(self, processing: dict, key: str = TEST_KEY) -> httpx.Response:
        sdk = {"type": "WorkflowConfiguration", "workflow_specification": None, "workspace_name": None,
               "workflow_id": None, "image_input_name": "image"}  # what inference-sdk sends, then the case's
        return httpx.post(f"{self.base}/initialise", timeout=60, json={
            "api_key": key, "video_configuration": {"type": "VideoConfiguration", "video_reference": self.video,
                                                    "max_fps": 5},
            "processing_configuration": {**sdk, **processing},
            "sink_configuration": {"type": "MemorySinkConfiguration", "results_buffer_size": 64}})

    def listed(self, key: str = TEST_KEY) -> set[str]:
        return set(httpx.request("GET", f"{self.base}/list", json={"api_key": key}, timeout=10).json()["pipelines"])

    def results_after(self, pipeline_id: str, after: float, count: int) -> list[dict]:
        """``count`` outputs of frames captured after ``after`` (within 30 s)."""
        found: list[dict] = []
        deadline = time.monotonic() + 30
        while len(found) < count and time.monotonic() < deadline:
            reply = httpx.request("GET", f"{self.base}/{pipeline_id}/consume", timeout=10,
                                  json={"api_key": TEST_KEY, "count": 100}).json()
            found += [o for o, m in zip(reply["outputs"], reply["frames_metadata"], strict=True)
                      if datetime.fromisoformat(m["frame_timestamp"]).timestamp() > after]
            time.sleep(0.2)
        assert len(found) >= count, found
        return found

    def terminate(self, pipeline_id: str) -> None:
        httpx.post(f"{self.base}/{pipeline_id}/terminate", json={"api_key": TEST_KEY}, timeout=10)


def test_stored_workflows_run_pinned_and_bad_workflows_are_refused_at_initialise(fleet: LocalFleet,
                                                                                 videos: Path) -> None:
    admin = admin_pb2_grpc.AdminServiceStub(grpc.insecure_channel(fleet.gateway.address))

    def put(workflow_id: str, definition: dict) -> None:
        admin.PutWorkflow(admin_pb2.PutWorkflowRequest(workspace="demo", workflow_id=workflow_id,
                                                       definition_json=json.dumps(definition)),
                          metadata=(("authorization", f"Bearer {fleet.admin_token}"),), timeout=30)

    put("pipe-flow", one_step())  # version 1
    manager = Manager(fleet, videos / "long.avi")
    stored = {"workspace_name": "demo", "workflow_id": "pipe-flow"}
    needs_zone = {**one_step(), "inputs": [*one_step()["inputs"], {"type": "WorkflowParameter", "name": "zone"}]}
    before, before_other = manager.listed(), manager.listed(OTHER_KEY)
    refused = {
        "unknown stored workflow": ({**stored, "workflow_id": "nothing-here"}, TEST_KEY, 404),
        "another workspace's workflow": (stored, OTHER_KEY, 404),
        "unknown version": ({**stored, "workflow_version_id": "7"}, TEST_KEY, 404),
        "invalid definition": ({"workflow_specification": {**one_step(), "steps": [{"type": "NoSuchBlock",
                                                                                     "name": "x"}]}}, TEST_KEY, 400),
        "unknown model": ({"workflow_specification": one_step("nope/1")}, TEST_KEY, 404),
        "not its image input": ({**stored, "image_input_name": "frame"}, TEST_KEY, 400),
        "a parameter frames cannot give": ({"workflow_specification": needs_zone}, TEST_KEY, 400),
        "both a definition and a name": ({**stored, "workflow_specification": one_step()}, TEST_KEY, 400),
    }
    for why, (processing, key, status) in refused.items():
        answer = manager.initialise(processing, key)
        assert answer.status_code == status, (why, answer.text)
    assert "step 'x'" in manager.initialise(refused["invalid definition"][0]).json()["message"]
    assert manager.listed() == before and manager.listed(OTHER_KEY) == before_other  # no pipeline from any of them

    started = manager.initialise(stored)
    assert started.status_code == 200, started.text
    pinned = started.json()["context"]["pipeline_id"]
    latest = None
    try:
        assert all("predictions" in o for o in manager.results_after(pinned, 0, 2))
        put("pipe-flow", boxes())  # version 2 becomes current: the running pipeline keeps version 1
        changed_at = time.time()
        outputs = manager.results_after(pinned, changed_at + 0.5, 3)
        assert all(set(o) == {"predictions"} for o in outputs), outputs
        assert any(o["predictions"]["predictions"] for o in outputs)
        latest = manager.initialise(stored).json()["context"]["pipeline_id"]  # a new pipeline: version 2
        assert all(set(o) == {"boxes"} for o in manager.results_after(latest, 0, 2))
        old = manager.initialise({**stored, "workflow_version_id": "1"}).json()["context"]["pipeline_id"]
        manager.terminate(old)
        # workflows_parameters feed the workflow's parameters (here one without a default).
        confident = {**one_step(), "inputs": [*one_step()["inputs"], {"type": "WorkflowParameter",
                                                                      "name": "confidence"}]}
        confident["steps"] = [{**confident["steps"][0], "confidence": "$inputs.confidence"}]
        assert manager.initialise({"workflow_specification": confident}).status_code == 400
        given = manager.initialise({"workflow_specification": confident, "workflows_parameters": {"confidence": 0.9}})
        assert given.status_code == 200, given.text
        with_parameters = given.json()["context"]["pipeline_id"]
        found = [p for o in manager.results_after(with_parameters, 0, 3) for p in o["predictions"]["predictions"]]
        manager.terminate(with_parameters)
        assert found and all(p["confidence"] >= 0.9 for p in found)
    finally:
        manager.terminate(pinned)
        if latest:
            manager.terminate(latest)


def test_grpc_create_pipeline_runs_inline_and_stored_workflows(fleet: LocalFleet, videos: Path) -> None:
    admin = admin_pb2_grpc.AdminServiceStub(grpc.insecure_channel(fleet.gateway.address))
    admin.PutWorkflow(admin_pb2.PutWorkflowRequest(workspace="demo", workflow_id="grpc-flow",
                                                   definition_json=json.dumps(boxes())),
                      metadata=(("authorization", f"Bearer {fleet.admin_token}"),), timeout=30)
    service = stub(fleet.pipelines_processes[0].address)
    manager = Manager(fleet, videos / "long.avi")
    sources = [pipelines_pb2.VideoSource(reference=str(videos / "long.avi"))]

    def create(workflow: pipelines_pb2.PipelineWorkflow, key: str = TEST_KEY, model_id: str = "") -> str:
        request = pipelines_pb2.CreatePipelineRequest(sources=sources, max_fps=5, model_id=model_id,
                                                      workflow=workflow)
        return service.CreatePipeline(request, metadata=auth(key), timeout=60).pipeline.pipeline_id

    def code(workflow: pipelines_pb2.PipelineWorkflow, key: str = TEST_KEY, model_id: str = "") -> grpc.StatusCode:
        with pytest.raises(grpc.RpcError) as err:
            create(workflow, key, model_id)
        return err.value.code()

    stored = pipelines_pb2.PipelineWorkflow(stored=workflow_pb2.StoredWorkflow(workspace="demo",
                                                                               workflow_id="grpc-flow"))
    confident = {**one_step(), "inputs": [*one_step()["inputs"], {"type": "WorkflowParameter", "name": "confidence"}]}
    confident["steps"] = [{**confident["steps"][0], "confidence": "$inputs.confidence"}]
    inline = pipelines_pb2.PipelineWorkflow()
    inline.definition.update(confident)
    before = manager.listed()
    assert code(stored, model_id="shapes-det/1") == grpc.StatusCode.INVALID_ARGUMENT  # a model and a workflow
    assert code(stored, OTHER_KEY) == grpc.StatusCode.NOT_FOUND  # another workspace's workflow
    assert code(pipelines_pb2.PipelineWorkflow(stored=workflow_pb2.StoredWorkflow(
        workspace="demo", workflow_id="nothing-here"))) == grpc.StatusCode.NOT_FOUND
    assert code(inline) == grpc.StatusCode.INVALID_ARGUMENT  # its parameter has no default and none is given
    assert code(pipelines_pb2.PipelineWorkflow(stored=stored.stored, image_input_name="frame")) == \
        grpc.StatusCode.INVALID_ARGUMENT
    assert manager.listed() == before  # nothing recorded for any of them

    inline.parameters.update({"confidence": 0.9})
    ids = [create(stored), create(inline)]
    try:
        info = service.GetPipeline(pipelines_pb2.GetPipelineRequest(pipeline_id=ids[0]), metadata=auth(TEST_KEY),
                                   timeout=10).pipeline
        assert info.workflow.startswith("demo/grpc-flow@") and not info.model_id, info
        assert all(set(o) == {"boxes"} for o in manager.results_after(ids[0], 0, 2))
        found = [p for o in manager.results_after(ids[1], 0, 3) for p in o["predictions"]["predictions"]]
        assert found and all(p["confidence"] >= 0.9 for p in found)
    finally:
        for pipeline_id in ids:
            manager.terminate(pipeline_id)
