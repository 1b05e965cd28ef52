"""Light runs at a forwarding gateway's edge (``LightOrForward``), against a stand-in core: an inline definition
is decided and compiled once by its bytes as sent, and a request whose stored workflow overrides its inline
definition on the wire runs the stored one without touching what is known of the inline one."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format

from fleet.internal.v1 import descriptor_pb2
from fleet.v1 import inference_pb2, workflow_pb2
from services.gateway.caller import Caller
from services.gateway.workflow_light import LightOrForward
from services.gateway.workflow_servicer import WorkflowServicer, result_of
from services.workflows.engine import WorkflowEngine
from tests.workflows.definitions import detect_crop_classify, one_step

JPEG = b"\xff\xd8" + b"\x00" * 64  # the stand-in worker answers without reading it


class Core:
    """The gateway's core as a run's model steps use it: one detector answering one box."""

    default_timeout_s = 30.0

    async def model(self, caller: Caller, model_id: str) -> descriptor_pb2.ModelDescriptor:
        return descriptor_pb2.ModelDescriptor(model_id=model_id, task="object-detection")

    async def infer_images(self, caller: Caller, model: Any, images: list, parameters: Any, timeout_s: Any,
                           item: str = "image", background: bool = False) -> list[inference_pb2.InferResponse]:
        response = inference_pb2.InferResponse(model_id=model.model_id, image_width=40, image_height=30)
        response.object_detection.detections.add(x=10, y=10, width=4, height=4, confidence=0.9, class_name="a")
        return [response] * len(images)


class Auth:
    async def caller_of(self, context: Any) -> Caller:
        return Caller("demo")


class Stored:
    def __init__(self, definition: dict) -> None:
        self.definition = definition

    async def resolve(self, caller: Caller, workspace: str, workflow_id: str, version_id: str) -> tuple:
        return self.definition, "stored", "1"


class Forwarder:
    def __init__(self) -> None:
        self.forwarded: list[bytes] = []

    async def run(self, request: bytes, context: Any) -> bytes:
        self.forwarded.append(request)
        return b""


class Context:
    def invocation_metadata(self) -> tuple:
        return ()

    def time_remaining(self) -> float:
        return 30.0


def inline(definition: dict) -> bytes:
    request = workflow_pb2.RunWorkflowRequest(images={
        "image": workflow_pb2.WorkflowImages(images=[inference_pb2.Image(encoded=JPEG)])})
    json_format.ParseDict(definition, request.definition)
    return request.SerializeToString()


@pytest.fixture
def edge() -> tuple[LightOrForward, Forwarder, list[int]]:
    engine = WorkflowEngine()
    compiles: list[int] = []
    compile_ = engine.compiler.compile

    def counted(raw: Any) -> Any:
        compiles.append(1)
        return compile_(raw)

    engine.compiler.compile = counted  # type: ignore[method-assign]
    renamed = one_step()
    renamed["outputs"][0]["name"] = "stored_predictions"
    stored, forwarder = Stored(renamed), Forwarder()
    servicer = WorkflowServicer(Core(), engine, Auth(), stored)  # type: ignore[arg-type]
    yield LightOrForward(servicer, forwarder, engine, Auth(), stored), forwarder, compiles  # type: ignore[arg-type]
    engine.close()


async def outputs(edge: LightOrForward, request: bytes) -> set[str]:
    reply = workflow_pb2.RunWorkflowResponse.FromString(await edge.RunWorkflow(request, Context()))
    return set(reply.outputs[0].fields)


async def test_a_light_inline_definition_is_compiled_once_and_a_heavy_one_forwarded(edge) -> None:  # noqa: ANN001
    light, forwarder, compiles = edge
    assert await outputs(light, inline(one_step())) == {"predictions"}
    assert await outputs(light, inline(one_step())) == {"predictions"}
    assert len(compiles) == 1 and not forwarder.forwarded  # the second run used the graph compiled for the first
    heavy = inline(detect_crop_classify())
    await light.RunWorkflow(heavy, Context())
    await light.RunWorkflow(heavy, Context())
    assert forwarder.forwarded == [heavy, heavy] and len(compiles) == 2


async def test_a_stored_workflow_after_the_inline_definition_runs_and_leaves_it_alone(edge) -> None:  # noqa: ANN001
    light, forwarder, _ = edge
    plain = inline(one_step())
    assert await outputs(light, plain) == {"predictions"}  # known now, by its bytes
    both = plain + workflow_pb2.RunWorkflowRequest(stored=workflow_pb2.StoredWorkflow(
        workspace="demo", workflow_id="flow")).SerializeToString()  # the oneof's last field wins: stored
    assert await outputs(light, both) == {"stored_predictions"}
    assert await outputs(light, plain) == {"predictions"}
    assert not forwarder.forwarded


def test_every_output_is_set_in_the_reply_empty_lists_and_dicts_too() -> None:
    result = result_of({"none_found": [], "no_fields": {}, "count": 0, "nothing": None, "boxes": [{"x": 1}]})
    kinds = {name: (value.WhichOneof("value"), value.json.WhichOneof("kind")) for name, value in result.fields.items()}
    assert kinds == {"none_found": ("json", "list_value"), "no_fields": ("json", "struct_value"),
                     "count": ("json", "number_value"), "nothing": ("json", "null_value"),
                     "boxes": ("json", "list_value")}
    parsed = workflow_pb2.WorkflowResult.FromString(result.SerializeToString())  # (as a client reads it)
    assert json_format.MessageToDict(parsed.fields["none_found"].json) == []
    assert json_format.MessageToDict(parsed.fields["no_fields"].json) == {}
