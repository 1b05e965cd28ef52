"""What a pipeline runs frames through: a model through the gateway's fleet.v1 API, or a workflow.

``FrameProcessor`` is the small interface a pipeline sees. ``ModelProcessor`` sends frames as the caller
(their API key) through a ``GatewayBatcher`` that batches frames of every pipeline sharing a model and key
into one InferBatch. ``WorkflowProcessor`` is where RunWorkflow plugs in once the workflow engine (issue 27)
is on fleet.v1: until then only a workflow whose one step runs a model is accepted (it runs as that model),
and any other definition is refused at initialise with FAILED_PRECONDITION.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Protocol

import cv2
import grpc

from fleet.v1 import gateway_pb2_grpc, inference_pb2
from services.common.errors import FailedPrecondition, FleetError, InvalidArgument
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
            asyncio.get_running_loop().create_task(self._send(key, batch))

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


MODEL_STEP_TYPES = {"ObjectDetectionModel", "roboflow_core/roboflow_object_detection_model@v1",
                    "roboflow_core/roboflow_object_detection_model@v2", "RoboflowObjectDetectionModel",
                    "InstanceSegmentationModel", "roboflow_core/roboflow_instance_segmentation_model@v1",
                    "ClassificationModel", "roboflow_core/roboflow_classification_model@v1"}


def workflow_as_model(definition: dict) -> Target:
    """A workflow definition whose one step runs a model on the input image, as that model's Target.

    Other definitions need the workflow engine's RunWorkflow, which this fleet does not have yet."""
    steps = definition.get("steps") if isinstance(definition, dict) else None
    if not isinstance(steps, list) or not steps:
        raise InvalidArgument("the workflow specification has no steps")
    if len(steps) != 1 or steps[0].get("type") not in MODEL_STEP_TYPES:
        raise FailedPrecondition("this fleet runs workflows of one model step only until the workflow engine "
                                 "(RunWorkflow) is deployed; run the model directly or use one model step")
    step = steps[0]
    model_id = step.get("model_id")
    if not isinstance(model_id, str) or not model_id:
        raise InvalidArgument("the workflow's model step needs a literal model_id")
    outputs = definition.get("outputs") or []
    name = outputs[0].get("name", "predictions") if outputs and isinstance(outputs[0], dict) else "predictions"
    confidence = step.get("confidence")
    return Target(model_id=model_id, workflow=json.dumps(definition),
                  confidence=float(confidence) if isinstance(confidence, (int, float)) else None, output_name=name)
