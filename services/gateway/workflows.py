"""The workflow engine on the gateway's core: model steps as ``Gateway.infer_images`` calls for one caller,
so they get ``Infer``'s routing, batching, copies and failover, under the run's deadline. They are background
calls: workers serve interactive requests first (docs/workflows.md, "Isolation")."""

from __future__ import annotations

import time
from typing import Any

from fleet.internal.v1 import descriptor_pb2
from fleet.v1 import inference_pb2
from services.common.errors import DeadlineExceeded, FleetError
from services.common.rpc_errors import error_of
from services.common.url_fetch import UrlFetcher
from services.gateway import fused
from services.gateway.caller import Caller
from services.gateway.gateway import Gateway, all_or_first_error
from services.gateway.settings import GatewaySettings
from services.workflows.compiler import Compiled
from services.workflows.blocks.base import CropsAnswer
from services.workflows.engine import ImageOf, Limits, WorkflowEngine


def engine_of(settings: GatewaySettings) -> WorkflowEngine:
    """The gateway's engine; image URLs in workflow inputs are fetched here (a run decodes, crops and draws on
    its images itself), vetted as the workers vet ``Infer``'s (``FLEET_GATEWAY_URL_*``)."""
    urls = UrlFetcher(settings.url_input_enabled, settings.url_allow_private, settings.url_timeout_s,
                      settings.max_message_bytes, hosts=tuple(settings.url_hosts.split(",")))
    return WorkflowEngine(Limits(settings.workflow_max_steps, settings.workflow_max_definition_bytes,
                                 settings.workflow_max_images, settings.workflow_max_crops_per_image,
                                 settings.workflow_cpu_threads, fuse_crops=settings.workflow_fuse_crops,
                                 cpu_nice=settings.workflow_cpu_nice,
                                 cpu_sched_idle=settings.workflow_cpu_sched_idle), urls.fetch)


class CallerModels:
    """``ModelRunner`` for one run: models resolved once per run, every call within the run's deadline."""

    def __init__(self, gateway: Gateway, caller: Caller, timeout_s: float | None) -> None:
        self.gateway, self.caller = gateway, caller
        self.deadline = time.monotonic() + (timeout_s if timeout_s is not None else gateway.default_timeout_s)
        self._models: dict[str, descriptor_pb2.ModelDescriptor] = {}

    async def model(self, model_id: str) -> descriptor_pb2.ModelDescriptor:
        if model_id not in self._models:
            self._models[model_id] = await self.gateway.model(self.caller, model_id)
        return self._models[model_id]

    async def infer_each(self, model: descriptor_pb2.ModelDescriptor, images: list[inference_pb2.Image],
                         parameters: inference_pb2.InferenceParameters,
                         ) -> list[inference_pb2.InferResponse | FleetError]:
        """One image as ``Infer`` (its error raised); several as one ``InferBatch``, each item's error kept."""
        if len(images) == 1:
            return await self.gateway.infer_images(self.caller, model, images, parameters, self._remaining(),
                                                   background=True)
        reply = await self.gateway.infer_batch(self.caller, inference_pb2.InferBatchRequest(
            model_id=model.model_id, images=images, parameters=parameters), self._remaining(), model, background=True)
        return [error_of(item.error) if item.HasField("error") else item.response for item in reply.items]

    async def infer_request(self, model: descriptor_pb2.ModelDescriptor,
                            request: inference_pb2.InferRequest) -> inference_pb2.InferResponse:
        return await self.gateway.infer(self.caller, request, self._remaining(), model, background=True)

    async def infer_crops(self, detector: descriptor_pb2.ModelDescriptor, image: inference_pb2.Image,
                          parameters: inference_pb2.InferenceParameters, classifier: descriptor_pb2.ModelDescriptor,
                          classifier_parameters: inference_pb2.InferenceParameters,
                          max_crops: int) -> CropsAnswer | None:
        self._remaining()
        reply = await fused.infer_crops(self.gateway, detector, image, parameters, classifier, classifier_parameters,
                                        max_crops, self.deadline)
        if reply is None:
            return None
        crops: list[inference_pb2.InferResponse] | Exception | None = None
        if not reply.crops_skipped:
            try:
                crops = all_or_first_error(reply.crops)
            except FleetError as exc:  # raised by the classifier step, as the steps one by one would
                crops = exc
        return CropsAnswer(reply.detections, crops)

    def _remaining(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded("the workflow run's deadline passed; send a longer timeout")
        return remaining


async def run_workflow(engine: WorkflowEngine, gateway: Gateway, caller: Caller, definition: Any,
                       inputs: dict[str, Any], image_of: ImageOf, timeout_s: float | None,
                       excluded: list[str] | None = None, workflow: str = "inline") -> list[dict[str, Any]]:
    """``definition``: its JSON, or its graph already compiled (``WorkflowEngine.run``)."""
    return await engine.run(definition, inputs, image_of, CallerModels(gateway, caller.in_workspace(), timeout_s),
                            excluded or (), workflow)


async def validate_workflow(engine: WorkflowEngine, gateway: Gateway, caller: Caller, definition: Any,
                            timeout_s: float | None) -> Compiled:
    """The definition's structure (as ``POST /workflows/validate``) and its models, as this caller would run it."""
    return await engine.check(definition, CallerModels(gateway, caller.in_workspace(), timeout_s))


def light_graph(engine: WorkflowEngine, definition: Any) -> Compiled | None:
    """The definition's compiled graph (the compiled-graph cache: once per content hash) where it is light
    (``Compiled.light``: no image work), one a forwarding gateway runs itself; else None. A definition that does
    not compile is not light: the engine's process refuses it, with the message it always gives."""
    if not isinstance(definition, dict):
        return None
    try:
        compiled = engine.compiler.compile(definition)
    except FleetError:
        return None
    return compiled if compiled.light else None
