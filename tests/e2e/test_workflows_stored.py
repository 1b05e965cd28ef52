"""Stored workflows and the gRPC edge against a real fleet: versions through ``fleet workflows``, runs by id on
HTTP and fleet.v1.WorkflowService (unary and streaming), tenancy, invalidation, the registry down."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf import json_format

from fleet.v1 import inference_pb2, workflow_pb2, workflow_pb2_grpc
from services.local.processes import LocalFleet
from services.cache.embedded import delete_namespace
from tests.conftest import OTHER_KEY, TEST_KEY, demo_models, write_catalog
from tests.workflows.definitions import detect_crop_classify, one_step

pytestmark = pytest.mark.slow
SAMPLE = (Path(__file__).resolve().parents[2] / "models" / "samples" / "shapes-1.jpg").read_bytes()
CACHE_S = 8.0
IMAGE = {"type": "base64", "value": base64.b64encode(SAMPLE).decode()}


def cli(fleet: LocalFleet, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FLEET_ADDRESS": fleet.gateway.address, "FLEET_ADMIN_TOKEN": fleet.admin_token,
           "XDG_STATE_HOME": str(fleet.state_dir)}
    return subprocess.run([sys.executable, "-m", "fleet.cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[LocalFleet]:
    """Gateways cache registry answers for CACHE_S: a change shows at once only through invalidation."""
    tmp = tmp_path_factory.mktemp("fleet")
    local = LocalFleet(redis_url, write_catalog(tmp / "catalog.yaml", demo_models()), workers=1,
                       namespace=f"wf-{uuid.uuid4().hex[:10]}", state_dir=tmp / "run",
                       env={"FLEET_GATEWAY_MODEL_CACHE_TTL_S": str(CACHE_S)})
    try:
        yield local.start()
    finally:
        local.stop()
        delete_namespace(redis_url, local.namespace)


@pytest.fixture(scope="module")
def http(fleet: LocalFleet) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fleet.gateway.http_url, timeout=60) as client:
        yield client


def stored_run(http: httpx.Client, key: str, path: str, **body) -> httpx.Response:
    return http.post(path, json={"api_key": key, "inputs": {"image": IMAGE}, **body})


def put(fleet: LocalFleet, tmp_path: Path, workspace: str, workflow_id: str, definition: dict,
        *extra: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / f"{workflow_id}.json"
    path.write_text(json.dumps(definition))
    return cli(fleet, "workflows", "put", workspace, workflow_id, str(path), *extra)


def test_versions_tenancy_invalidation_and_the_registry_down(fleet: LocalFleet, http: httpx.Client,
                                                             tmp_path: Path) -> None:
    done = put(fleet, tmp_path, "demo", "count-shapes", detect_crop_classify())
    assert done.returncode == 0 and "version 1 is current" in done.stdout, done.stderr
    first = stored_run(http, TEST_KEY, "/demo/workflows/count-shapes")
    assert first.status_code == 200, first.text
    assert set(first.json()["outputs"][0]) == {"detections", "classes", "top"}
    assert put(fleet, tmp_path, "demo", "count-shapes", one_step()).returncode == 0  # version 2: the cached
    second = stored_run(http, TEST_KEY, "/demo/workflows/count-shapes")             # version 1 is dropped at once
    assert set(second.json()["outputs"][0]) == {"predictions"}
    cached_at = time.monotonic()

    bad = {**one_step(), "steps": [{"type": "NoSuchBlock", "name": "x"}]}
    refused = put(fleet, tmp_path, "demo", "count-shapes", bad)
    assert refused.returncode == 1 and "INVALID_ARGUMENT" in refused.stderr and "step 'x'" in refused.stderr
    listed = json.loads(cli(fleet, "workflows", "list", "--workspace", "demo", "--json").stdout)
    assert [(w["workflow_id"], w["version_id"], w["versions"]) for w in listed] == [("count-shapes", "2", 2)]
    pinned = stored_run(http, TEST_KEY, "/infer/workflows/demo/count-shapes", workflow_version_id="1")
    assert set(pinned.json()["outputs"][0]) == {"detections", "classes", "top"}

    foreign = stored_run(http, OTHER_KEY, "/demo/workflows/count-shapes")
    unknown = stored_run(http, TEST_KEY, "/demo/workflows/nothing-here")
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json()["message"].replace("count-shapes", "X") == unknown.json()["message"].replace(
        "nothing-here", "X")
    assert put(fleet, tmp_path, "demo", "shared", one_step(), "--public").returncode == 0
    public = stored_run(http, OTHER_KEY, "/demo/workflows/shared")  # runs; its model is demo's own, though
    assert public.status_code == 404 and "step 'det'" in public.json()["message"]

    fleet.registry.kill()  # the registry down: what the gateway resolved before is served stale
    time.sleep(max(0.0, cached_at + CACHE_S + 0.5 - time.monotonic()))
    try:
        stale = stored_run(http, TEST_KEY, "/demo/workflows/count-shapes")
        assert stale.status_code == 200 and set(stale.json()["outputs"][0]) == {"predictions"}
    finally:
        fleet.restart("registry")
    deadline = time.monotonic() + 30  # the gateway's channel reconnects to the restarted registry
    while (deleted := cli(fleet, "workflows", "delete", "demo", "count-shapes")).returncode != 0:
        assert "UNAVAILABLE" in deleted.stderr and time.monotonic() < deadline, deleted.stderr
        time.sleep(1.0)
    gone = stored_run(http, TEST_KEY, "/demo/workflows/count-shapes")
    assert gone.status_code == 404


def test_grpc_run_workflow_inline_stored_and_streaming(fleet: LocalFleet, tmp_path: Path) -> None:
    assert put(fleet, tmp_path, "demo", "by-grpc", detect_crop_classify()).returncode == 0
    definition = json_format.ParseDict(detect_crop_classify(), workflow_pb2.RunWorkflowRequest().definition)
    viz = one_step()
    viz["steps"].append({"type": "BoundingBoxVisualization", "name": "viz", "image": "$inputs.image",
                         "predictions": "$steps.det.predictions"})
    viz["outputs"].append({"type": "JsonField", "name": "drawn", "selector": "$steps.viz.image"})
    images = {"image": workflow_pb2.WorkflowImages(images=[inference_pb2.Image(encoded=SAMPLE)] * 2)}
    md = (("authorization", f"Bearer {TEST_KEY}"),)
    with grpc.insecure_channel(fleet.gateway.address) as channel:
        stub = workflow_pb2_grpc.WorkflowServiceStub(channel)
        inline = stub.RunWorkflow(workflow_pb2.RunWorkflowRequest(definition=definition, images=images),
                                  metadata=md, timeout=60)
        assert len(inline.outputs) == 2 and inline.gateway_ms > 0
        detections = json_format.MessageToDict(inline.outputs[0].fields["detections"].json)["predictions"]
        assert len(inline.outputs[0].fields["classes"].json.list_value.values) == len(detections) > 0
        stored = stub.RunWorkflow(workflow_pb2.RunWorkflowRequest(
            stored=workflow_pb2.StoredWorkflow(workspace="demo", workflow_id="by-grpc"), images=images,
            parameters=json_format.ParseDict({"confidence": 0.9}, workflow_pb2.RunWorkflowRequest().parameters)),
            metadata=md, timeout=60)
        few = json_format.MessageToDict(stored.outputs[0].fields["detections"].json)["predictions"]
        assert len(few) <= len(detections) and all(p["confidence"] >= 0.9 for p in few)
        with pytest.raises(grpc.RpcError) as info:
            stub.RunWorkflow(workflow_pb2.RunWorkflowRequest(
                stored=workflow_pb2.StoredWorkflow(workspace="demo", workflow_id="by-grpc"), images=images),
                metadata=(("authorization", f"Bearer {OTHER_KEY}"),), timeout=60)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND

        drawn_def = json_format.ParseDict(viz, workflow_pb2.RunWorkflowRequest().definition)
        requests = [workflow_pb2.RunWorkflowStreamRequest(correlation_id=f"frame-{i}", request=(
            workflow_pb2.RunWorkflowRequest(definition=drawn_def, images=images) if i != 2 else
            workflow_pb2.RunWorkflowRequest(definition=drawn_def))) for i in range(4)]
        answers = {a.correlation_id: a for a in stub.RunWorkflowStream(iter(requests), metadata=md, timeout=120)}
        assert sorted(answers) == [f"frame-{i}" for i in range(4)]
        assert answers["frame-2"].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert "input 'image' is missing" in answers["frame-2"].error.message
        jpeg = answers["frame-0"].response.outputs[0].fields["drawn"].image
        assert jpeg[:3] == b"\xff\xd8\xff"


def test_grpc_validate_workflow_checks_structure_models_and_stored_ones(fleet: LocalFleet, tmp_path: Path) -> None:
    assert put(fleet, tmp_path, "demo", "to-check", one_step()).returncode == 0
    assert put(fleet, tmp_path, "demo", "to-check", detect_crop_classify()).returncode == 0  # version 2 is current

    def struct(definition: dict):  # noqa: ANN202 - a Struct
        return json_format.ParseDict(definition, workflow_pb2.ValidateWorkflowRequest().definition)

    def stored(workflow_id: str = "to-check", version: str = "") -> workflow_pb2.StoredWorkflow:
        return workflow_pb2.StoredWorkflow(workspace="demo", workflow_id=workflow_id, version_id=version)

    with grpc.insecure_channel(fleet.gateway.address) as channel:
        stub = workflow_pb2_grpc.WorkflowServiceStub(channel)

        def validate(key: str = TEST_KEY, **workflow) -> workflow_pb2.ValidateWorkflowResponse:
            return stub.ValidateWorkflow(workflow_pb2.ValidateWorkflowRequest(**workflow),
                                         metadata=(("authorization", f"Bearer {key}"),), timeout=30)

        inline = validate(definition=struct(detect_crop_classify()))
        assert inline.version_id == ""
        assert [(i.name, i.image, i.required) for i in inline.inputs] == [("image", True, False),
                                                                          ("confidence", False, False)]
        needs = {**one_step(), "inputs": [*one_step()["inputs"], {"type": "WorkflowParameter", "name": "zone"}]}
        assert [i.required for i in validate(definition=struct(needs)).inputs] == [False, True]
        assert validate(stored=stored()).version_id == "2"
        assert validate(stored=stored(version="1")).version_id == "1"
        refused = {
            "structure": ({"definition": struct({**one_step(), "steps": [{"type": "NoSuchBlock", "name": "x"}]})},
                          TEST_KEY, grpc.StatusCode.INVALID_ARGUMENT),
            "unknown model": ({"definition": struct(one_step("nope/1"))}, TEST_KEY, grpc.StatusCode.NOT_FOUND),
            "model of another task": ({"definition": struct(one_step("shapes-cls/1"))}, TEST_KEY,
                                      grpc.StatusCode.INVALID_ARGUMENT),
            "another workspace's model": ({"definition": struct(one_step())}, OTHER_KEY, grpc.StatusCode.NOT_FOUND),
            "unknown stored": ({"stored": stored("nothing-here")}, TEST_KEY, grpc.StatusCode.NOT_FOUND),
            "unknown version": ({"stored": stored(version="9")}, TEST_KEY, grpc.StatusCode.NOT_FOUND),
            "another workspace's stored": ({"stored": stored()}, OTHER_KEY, grpc.StatusCode.NOT_FOUND),
            "neither": ({}, TEST_KEY, grpc.StatusCode.INVALID_ARGUMENT),
        }
        for why, (workflow, key, expected) in refused.items():
            with pytest.raises(grpc.RpcError) as info:
                validate(key, **workflow)
            assert info.value.code() == expected, (why, info.value.details())
        with pytest.raises(grpc.RpcError) as info:
            validate(definition=struct(one_step("shapes-cls/1")))
        assert "step 'det'" in info.value.details() and "classification" in info.value.details()
