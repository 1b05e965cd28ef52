"""What a pipeline runs frames through: a model through the gateway's fleet.v1 API, or a workflow.

``FrameProcessor`` is the small interface a pipeline sees. ``ModelProcessor`` sends frames as the caller
(their API key) through a ``GatewayBatcher`` that batches frames of every pipeline sharing a model and key
into one InferBatch. ``WorkflowProcessor`` runs a workflow definition on the frames a pipeline took, one
fleet.v1 ``RunWorkflow`` per batch (one run element per frame).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

import cv2
import grpc

from google.protobuf import json_format, struct_pb2

from fleet.v1 import gateway_pb2_grpc, inference_pb2, workflow_pb2, workflow_pb2_grpc
from services.common.errors import FleetError, InvalidArgument
from services.common.rpc_errors import error_of, from_rpc_error
from services.gateway.http.roboflow_json import inference_json
from services.pipelines.spec import Frame, Target

Outcome = dict | FleetError  # a frame's outputs (name -> JSON value) or why that frame failed


class FrameProcessor(Protocol):
    async def process(self, api_key: str, frames: Sequence[Frame]) -> list[Outcome]: ...


def frame_image(frame: Frame, encoding: str) -> inference_pb2.Image:
    if frame.encoded:
        return inference_pb2.Image(encoded=frame.encoded)
    pixels = frame.pixels
    if encoding == "jpeg":
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        return inference_pb2.Image(encoded=jpeg.tobytes())
    height, width = pixels.shape[:2]
    return inference_pb2.Image(raw=inference_pb2.RawImage(data=pixels.tobytes(), width=width, height=height,
                                                          channels=3))


class GatewayBatcher:
    """Frames for one (key, model, parameters) wait up to ``wait_s`` to share an InferBatch of ``max_frames``."""

    def __init__(self, stub: gateway_pb2_grpc.GatewayServiceStub, max_frames: int, wait_s: float,
                 timeout_s: float, encoding: str, max_bytes: int) -> None:
        self.stub, self.max_frames, self.wait_s, self.timeout_s = stub, max_frames, wait_s, timeout_s
        self.encoding, self.max_bytes = encoding, max_bytes
        self._queues: dict[tuple, list[tuple[inference_pb2.Image, asyncio.Future]]] = {}
        self._timers: dict[tuple, asyncio.Task] = {}
        self._sending: set[asyncio.Task] = set()  # (the loop keeps only weak references to tasks)

    async def infer(self, api_key: str, target: Target, frames: Sequence[Frame]) -> list[Outcome]:
        loop = asyncio.get_running_loop()
        images = await asyncio.to_thread(lambda: [frame_image(f, self.encoding) for f in frames])
        key = (api_key, target.model_id, target.confidence)
        futures = [loop.create_future() for _ in frames]
        queue = self._queues.setdefault(key, [])
        queue.extend(zip(images, futures, strict=True))
        if len(queue) >= self.max_frames or not self.wait_s:
            self._flush(key)
        elif key not in self._timers:
            self._timers[key] = loop.create_task(self._flush_later(key))
        return list(await asyncio.gather(*futures))

    async def _flush_later(self, key: tuple) -> None:
        await asyncio.sleep(self.wait_s)
        self._timers.pop(key, None)
        self._flush(key)

    def _flush(self, key: tuple) -> None:
        queue = self._queues.pop(key, [])
        if (timer := self._timers.pop(key, None)) is not None and timer is not asyncio.current_task():
            timer.cancel()
        while queue:
            batch, size = [], 0
            while queue and len(batch) < self.max_frames:
                image = queue[0][0]
                if batch and size + image.ByteSize() > self.max_bytes:
                    break
                size += image.ByteSize()
                batch.append(queue.pop(0))
            task = asyncio.get_running_loop().create_task(self._send(key, batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, key: tuple, batch: list[tuple[inference_pb2.Image, asyncio.Future]]) -> None:
        api_key, model_id, confidence = key
        parameters = inference_pb2.InferenceParameters()
        if confidence is not None:
            parameters.confidence = confidence
        request = inference_pb2.InferBatchRequest(model_id=model_id, images=[i for i, _ in batch],
                                                  parameters=parameters)
        try:
            reply = await self.stub.InferBatch(request, metadata=(("authorization", f"Bearer {api_key}"),),
                                               timeout=self.timeout_s)
            outcomes: list[Outcome] = []
            for item in reply.items:
                if item.HasField("error"):
                    outcomes.append(error_of(item.error))
                else:
                    outcomes.append(inference_json(item.response))
        except grpc.aio.AioRpcError as exc:
            outcomes = [from_rpc_error(exc, "gateway")] * len(batch)
        except FleetError as exc:
            outcomes = [exc] * len(batch)
        for (_, future), outcome in zip(batch, outcomes, strict=False):
            if not future.done():
                future.set_result(outcome)


class ModelProcessor:
    def __init__(self, batcher: GatewayBatcher, target: Target) -> None:
        self.batcher, self.target = batcher, target

    async def process(self, api_key: str, frames: Sequence[Frame]) -> list[Outcome]:
        outcomes = await self.batcher.infer(api_key, self.target, frames)
        return [o if isinstance(o, FleetError) else {self.target.output_name: o} for o in outcomes]


def _workflow_of(target: Target) -> dict:
    """The RunWorkflowRequest / ValidateWorkflowRequest oneof for a target: its definition or its stored name."""
    if target.workflow_id:
        return {"stored": workflow_pb2.StoredWorkflow(workspace=target.workflow_workspace,
                                                      workflow_id=target.workflow_id,
                                                      version_id=target.workflow_version)}
    definition = struct_pb2.Struct()
    definition.update(json.loads(target.workflow))
    return {"definition": definition}


class WorkflowProcessor:
    def __init__(self, stub: workflow_pb2_grpc.WorkflowServiceStub, target: Target, encoding: str,
                 timeout_s: float) -> None:
        self.stub, self.target, self.encoding, self.timeout_s = stub, target, encoding, timeout_s
        self.workflow = _workflow_of(target)
        self.parameters = struct_pb2.Struct()
        self.parameters.update(json.loads(target.parameters or "{}"))

    async def process(self, api_key: str, frames: Sequence[Frame]) -> list[Outcome]:
        images = await asyncio.to_thread(lambda: [frame_image(f, self.encoding) for f in frames])
        request = workflow_pb2.RunWorkflowRequest(
            **self.workflow, images={self.target.image_input: workflow_pb2.WorkflowImages(images=images)},
            parameters=self.parameters)
        try:
            reply = await self.stub.RunWorkflow(request, metadata=(("authorization", f"Bearer {api_key}"),),
                                                timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            return [from_rpc_error(exc, "gateway")] * len(frames)
        return [{name: _value(v) for name, v in result.fields.items()} for result in reply.outputs]


def _value(value: workflow_pb2.WorkflowValue) -> object:
    if value.HasField("image"):
        return {"type": "base64", "value": base64.b64encode(value.image).decode("ascii")}
    return json_format.MessageToDict(value.json)


class GatewayWorkflows:
    """``WorkflowCheck`` through the gateway's fleet.v1 ``ValidateWorkflow``, as the caller: the definition's
    structure and models, a stored workflow's existence for the caller's workspace (pinned to the version it
    found), and that frames can feed it: ``image_input`` is its one image input and every parameter has a
    default or a value in ``workflows_parameters`` (a pipeline sends frames and those, nothing else)."""

    def __init__(self, stub: workflow_pb2_grpc.WorkflowServiceStub, timeout_s: float) -> None:
        self.stub, self.timeout_s = stub, timeout_s

    async def check(self, api_key: str, target: Target) -> Target:
        request = workflow_pb2.ValidateWorkflowRequest(**_workflow_of(target))
        try:
            reply = await self.stub.ValidateWorkflow(request, metadata=(("authorization", f"Bearer {api_key}"),),
                                                     timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "gateway") from None
        images = [i.name for i in reply.inputs if i.image]
        if target.image_input not in images:
            raise InvalidArgument(f"image_input_name {target.image_input!r} is not an image input of the workflow "
                                  f"(its image inputs: {', '.join(images) or 'none'})")
        given = json.loads(target.parameters or "{}")
        if others := [i.name for i in reply.inputs
                      if (i.image and i.name != target.image_input) or (i.required and i.name not in given)]:
            raise InvalidArgument(f"the workflow's inputs {', '.join(others)} have no default: a pipeline feeds "
                                  f"its frames to {target.image_input!r} and workflows_parameters to parameters")
        return replace(target, workflow_version=reply.version_id) if target.workflow_id else target


MAX_PARAMETERS_BYTES = 64 * 1024  # a workflow's parameter values, as JSON


def workflow_target(definition: object, image_input: str = "image") -> Target:
    """A workflow definition (the reference's ``workflow_specification``) as what a pipeline runs (validated in
    full by the gateway at initialise)."""
    if not isinstance(definition, dict):
        raise InvalidArgument("the workflow specification must be a JSON object")
    return Target(workflow=json.dumps(definition), image_input=_image_input(image_input))


def stored_workflow_target(workspace: object, workflow_id: object, version: object = None,
                           image_input: str = "image") -> Target:
    """A stored workflow (the reference's ``workspace_name`` and ``workflow_id``; a version optional)."""
    if not isinstance(workspace, str) or not workspace or not isinstance(workflow_id, str) or not workflow_id:
        raise InvalidArgument("a stored workflow is named by workspace_name and workflow_id (non-empty strings)")
    if len(workspace) > 128 or len(workflow_id) > 256:
        raise InvalidArgument("workspace_name or workflow_id is too long")
    if version is not None and not isinstance(version, (str, int)):
        raise InvalidArgument("workflow_version_id must be a version's id")
    return Target(workflow_workspace=workspace, workflow_id=workflow_id,
                  workflow_version="" if version is None else str(version), image_input=_image_input(image_input))


def _image_input(image_input: object) -> str:
    if not isinstance(image_input, str) or not image_input:
        raise InvalidArgument("image_input_name must name the workflow's image input")
    return image_input
