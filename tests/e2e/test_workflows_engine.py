"""The workflow engine as a process of its own behind the gateway (docs/workflows.md, "Where the engine runs"):
forwarded calls answer as in-process ones, it authenticates callers itself, and its loss fails workflows only."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf import json_format

from fleet.v1 import gateway_pb2_grpc, inference_pb2, workflow_pb2, workflow_pb2_grpc
from fleet.client import build_request
from services.demo.scenes import generate_scene
from services.local.processes import LocalFleet, ServiceProcess
from tests.conftest import TEST_KEY
from tests.e2e.conftest import own_gateway
from tests.e2e.probes import metric
from tests.e2e.test_inference import SEEDS, encode
from tests.e2e.test_workflows_stored import put
from tests.workflows.definitions import detect_crop_classify, one_step

pytestmark = pytest.mark.slow
AUTH = (("authorization", f"Bearer {TEST_KEY}"),)
RUNS = "fleet_workflow_runs_total"
PLACES = "fleet_gateway_workflow_runs_by_place_total"


@pytest.fixture(scope="module")
def scene() -> bytes:
    return encode(generate_scene(SEEDS[3]).image)


@pytest.fixture(scope="module")
def in_process(fleet: LocalFleet) -> Iterator[ServiceProcess]:
    """A gateway on the shared fleet that runs workflows itself (no workflows_address)."""
    with own_gateway(fleet, {"FLEET_GATEWAY_WORKFLOWS_ADDRESS": ""}) as gateway:
        assert gateway.engine is None
        yield gateway


def request(definition: dict, scene: bytes, **parameters: float) -> workflow_pb2.RunWorkflowRequest:
    out = workflow_pb2.RunWorkflowRequest(images={"image": workflow_pb2.WorkflowImages(
        images=[inference_pb2.Image(encoded=scene)])})
    json_format.ParseDict(definition, out.definition)
    json_format.ParseDict(parameters, out.parameters)
    return out


def stub(address: str) -> workflow_pb2_grpc.WorkflowServiceStub:
    return workflow_pb2_grpc.WorkflowServiceStub(grpc.insecure_channel(address))


def stable(value: object) -> object:
    """An answer without what differs from run to run (ids made per run and per detection, timings)."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if not k.endswith("_id") or k == "class_id"
                if k not in ("time", "gateway_ms")}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def answers(reply: workflow_pb2.RunWorkflowResponse) -> list:
    return stable([json_format.MessageToDict(o) for o in reply.outputs])  # type: ignore[return-value]


def http_run(gateway: ServiceProcess, definition: dict, scene: bytes, key: str = TEST_KEY) -> httpx.Response:
    return httpx.post(f"{gateway.http_url}/workflows/run", timeout=60, headers={"Authorization": f"Bearer {key}"},
                      json={"specification": definition,
                            "inputs": {"image": {"type": "base64", "value": base64.b64encode(scene).decode()}}})


def test_forwarded_calls_answer_as_in_process_ones_and_run_on_the_engine(fleet: LocalFleet, in_process: ServiceProcess,
                                                                        scene: bytes) -> None:
    engine = fleet.gateway.engine
    assert engine is not None and engine.alive()
    definition = detect_crop_classify()
    ran = metric(engine, RUNS, workflow="inline", outcome="OK")
    own = metric(fleet.gateway, RUNS)
    forwarded = stub(fleet.gateway.address).RunWorkflow(request(definition, scene), metadata=AUTH, timeout=60)
    local = stub(in_process.address).RunWorkflow(request(definition, scene), metadata=AUTH, timeout=60)
    assert answers(forwarded) == answers(local) and answers(forwarded)[0]["fields"]
    over_http = http_run(fleet.gateway, definition, scene)
    assert over_http.status_code == 200, over_http.text
    assert stable(over_http.json()) == stable(http_run(in_process, definition, scene).json())
    assert metric(engine, RUNS, workflow="inline", outcome="OK") == ran + 2  # both ran there, not in the gateway
    assert metric(fleet.gateway, RUNS) == own  # none ran in the gateway (earlier tests on this shared fleet may have)
    validated = stub(fleet.gateway.address).ValidateWorkflow(workflow_pb2.ValidateWorkflowRequest(
        definition=request(definition, scene).definition), metadata=AUTH, timeout=60)
    assert [i.name for i in validated.inputs] == ["image", "confidence"]
    streamed = list(stub(fleet.gateway.address).RunWorkflowStream(iter([
        workflow_pb2.RunWorkflowStreamRequest(correlation_id=str(i), request=request(one_step(), scene))
        for i in range(3)]), metadata=AUTH, timeout=60))
    assert sorted(r.correlation_id for r in streamed) == ["0", "1", "2"]
    assert all(r.HasField("response") and r.response.outputs for r in streamed)
    for path, method in (("/workflows/definition/schema", "GET"), ("/workflows/blocks/describe", "POST")):
        a = httpx.request(method, f"{fleet.gateway.http_url}{path}", headers={"Authorization": f"Bearer {TEST_KEY}"})
        b = httpx.request(method, f"{in_process.http_url}{path}", headers={"Authorization": f"Bearer {TEST_KEY}"})
        assert a.status_code == b.status_code == 200 and a.json() == b.json()


def test_errors_keep_their_status_message_and_request_id(fleet: LocalFleet, in_process: ServiceProcess,
                                                         scene: bytes) -> None:
    bad = one_step("no-such-model/1")
    statuses = []
    for gateway in (fleet.gateway, in_process):
        with pytest.raises(grpc.RpcError) as caught:
            stub(gateway.address).RunWorkflow(request(bad, scene), metadata=(*AUTH, ("x-request-id", "wf-req-1")),
                                              timeout=60)
        trailer = dict(caught.value.trailing_metadata() or ())
        statuses.append((caught.value.code(), caught.value.details(), trailer.get("x-request-id")))
        reply = http_run(gateway, bad, scene)
        statuses.append((reply.status_code, reply.json()["message"], None))
    assert statuses[0] == statuses[2] and statuses[1] == statuses[3]
    assert statuses[0][0] is grpc.StatusCode.NOT_FOUND and statuses[0][2] == "wf-req-1"
    broken = one_step()
    broken["steps"][0]["type"] = "roboflow_core/no_such_block@v1"  # does not compile: the engine's to refuse
    refusals = []
    for gateway in (fleet.gateway, in_process):
        with pytest.raises(grpc.RpcError) as caught:
            stub(gateway.address).RunWorkflow(request(broken, scene), metadata=AUTH, timeout=60)
        answer = http_run(gateway, broken, scene)
        refusals.append((caught.value.code(), caught.value.details(), answer.status_code,
                         {k: v for k, v in answer.json().items() if k != "request_id"}))
    assert refusals[0] == refusals[1] and refusals[0][0] is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as caught:  # the caller's deadline travels with the call
        stub(fleet.gateway.address).RunWorkflow(request(detect_crop_classify(), scene), metadata=AUTH,
                                                timeout=0.002)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    for gateway in (fleet.gateway, in_process):  # a caller's key is checked wherever the run goes
        with pytest.raises(grpc.RpcError) as caught:
            stub(gateway.address).RunWorkflow(request(one_step(), scene), metadata=(("authorization", "Bearer no"),),
                                              timeout=60)
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert http_run(gateway, one_step(), scene, key="fk_wrong").status_code == 401


def test_the_engine_port_authenticates_every_caller_and_serves_workflows_only(fleet: LocalFleet,
                                                                               scene: bytes) -> None:
    engine = fleet.gateway.engine
    assert engine is not None
    direct = stub(engine.address)
    for metadata in ((), (("authorization", "Bearer fk_not_a_key"),)):
        with pytest.raises(grpc.RpcError) as caught:
            direct.RunWorkflow(request(one_step(), scene), metadata=metadata, timeout=30)
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert http_run(engine, one_step(), scene, key="fk_not_a_key").status_code == 401
    assert httpx.post(f"{engine.http_url}/workflows/run", json={"specification": one_step(), "inputs": {}},
                      timeout=30).status_code == 401
    with pytest.raises(grpc.RpcError) as caught:  # only workflows: no way to Infer (or administer) through it
        gateway_pb2_grpc.GatewayServiceStub(grpc.insecure_channel(engine.address)).Infer(
            build_request("shapes-det/1", scene), metadata=AUTH, timeout=30)
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert httpx.post(f"{engine.http_url}/shapes-det/1", timeout=30,
                      params={"api_key": TEST_KEY}).status_code == 404
    assert direct.RunWorkflow(request(one_step(), scene), metadata=AUTH, timeout=60).outputs


def drawn() -> dict:
    """A one-step detector whose boxes are drawn and answered: image work, the engine's to run."""
    definition = one_step()
    definition["steps"].append({"type": "roboflow_core/bounding_box_visualization@v1", "name": "viz",
                                "image": "$inputs.image", "predictions": "$steps.det.predictions"})
    definition["outputs"].append({"type": "JsonField", "name": "drawn", "selector": "$steps.viz.image"})
    return definition


def test_light_runs_stay_in_the_gateway_and_answer_as_in_process_ones(fleet: LocalFleet, in_process: ServiceProcess,
                                                                     scene: bytes, tmp_path: Path) -> None:
    engine = fleet.gateway.engine
    assert engine is not None
    ran_there, ok_there = metric(engine, RUNS), metric(engine, RUNS, outcome="OK")
    here, there = metric(fleet.gateway, PLACES, place="gateway"), metric(fleet.gateway, PLACES, place="engine")
    local = stub(fleet.gateway.address).RunWorkflow(request(one_step(), scene), metadata=AUTH, timeout=60)
    reference = stub(in_process.address).RunWorkflow(request(one_step(), scene), metadata=AUTH, timeout=60)
    assert answers(local) == answers(reference) and answers(local)[0]["fields"]["predictions"]
    over_http = http_run(fleet.gateway, one_step(), scene)
    assert over_http.status_code == 200, over_http.text
    assert stable(over_http.json()) == stable(http_run(in_process, one_step(), scene).json())
    assert put(fleet, tmp_path, "demo", "light-one-step", one_step()).returncode == 0
    stored = workflow_pb2.RunWorkflowRequest(stored=workflow_pb2.StoredWorkflow(
        workspace="demo", workflow_id="light-one-step"), images=request(one_step(), scene).images)
    assert answers(stub(fleet.gateway.address).RunWorkflow(stored, metadata=AUTH, timeout=60)) == answers(reference)
    by_id = httpx.post(f"{fleet.gateway.http_url}/demo/workflows/light-one-step", timeout=60,
                       json={"api_key": TEST_KEY, "inputs": {"image": {
                           "type": "base64", "value": base64.b64encode(scene).decode()}}})
    assert by_id.status_code == 200 and stable(by_id.json()) == stable(over_http.json())
    assert metric(fleet.gateway, PLACES, place="gateway") == here + 4  # all four ran in the gateway ...
    assert metric(fleet.gateway, RUNS, workflow="inline", outcome="OK") >= 2
    assert metric(engine, RUNS) == ran_there  # ... none on the engine
    heavy = stub(fleet.gateway.address).RunWorkflow(request(drawn(), scene), metadata=AUTH, timeout=60)
    assert heavy.outputs[0].fields["drawn"].image
    assert metric(fleet.gateway, PLACES, place="engine") == there + 1
    assert metric(engine, RUNS, outcome="OK") == ok_there + 1


def test_without_its_engine_heavy_workflows_are_unavailable_and_light_ones_and_infer_go_on(
        fleet: LocalFleet, scene: bytes) -> None:
    heavy = detect_crop_classify()
    with own_gateway(fleet, {}) as gateway:
        assert gateway.engine is not None
        flows, infer = stub(gateway.address), gateway_pb2_grpc.GatewayServiceStub(grpc.insecure_channel(gateway.address))
        assert flows.RunWorkflow(request(heavy, scene), metadata=AUTH, timeout=60).outputs
        gateway.engine.kill()
        for definition in (heavy, drawn()):
            with pytest.raises(grpc.RpcError) as caught:
                flows.RunWorkflow(request(definition, scene), metadata=AUTH, timeout=30)
            assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
            assert "workflow engine is unavailable" in caught.value.details()
        assert "127.0.0.1" not in caught.value.details() and str(gateway.engine.port) not in caught.value.details()
        reply = http_run(gateway, heavy, scene)
        assert reply.status_code == 503 and "workflow engine is unavailable" in reply.json()["message"]
        assert "127.0.0.1" not in reply.text
        here = metric(gateway, PLACES, place="gateway")
        assert flows.RunWorkflow(request(one_step(), scene), metadata=AUTH, timeout=30).outputs  # light: here
        assert http_run(gateway, one_step(), scene).status_code == 200
        assert metric(gateway, PLACES, place="gateway") == here + 2
        answer = infer.Infer(build_request("shapes-det/1", scene), metadata=AUTH, timeout=30)
        assert answer.object_detection.detections
        engine = fleet.restart(gateway.engine.name)  # back on the same ports: workflows work again
        assert gateway.engine is engine
        deadline = time.monotonic() + 30
        while True:
            try:
                assert flows.RunWorkflow(request(heavy, scene), metadata=AUTH, timeout=30).outputs
                break
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        assert json.loads(http_run(gateway, heavy, scene).text)["outputs"]


def test_with_light_runs_off_every_run_goes_to_the_engine(fleet: LocalFleet, scene: bytes) -> None:
    with own_gateway(fleet, {"FLEET_GATEWAY_WORKFLOWS_LIGHT_IN_GATEWAY": "false"}) as gateway:
        assert gateway.engine is not None
        flows = stub(gateway.address)
        assert flows.RunWorkflow(request(one_step(), scene), metadata=AUTH, timeout=60).outputs
        gateway.engine.kill()
        with pytest.raises(grpc.RpcError) as caught:
            flows.RunWorkflow(request(one_step(), scene), metadata=AUTH, timeout=30)
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        assert http_run(gateway, one_step(), scene).status_code == 503
        assert metric(gateway, PLACES, place="gateway") == 0
