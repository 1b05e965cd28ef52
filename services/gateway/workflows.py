"""The workflow engine on the gateway's core: model steps as ``Gateway.infer_images`` calls for one caller,
so they get ``Infer``'s routing, batching, copies and failover, under the run's deadline. They are background
calls: workers serve interactive requests first (docs/workflows.md, "Isolation")."""

from __future__ import annotations

import time
from typing import Any

from fleet.internal.v1 import descriptor_pb2
from fleet.v1 import inference_pb2
from services.common.errors import DeadlineExceeded
from services.gateway.caller import Caller
from services.gateway.gateway import Gateway
from services.gateway.settings import GatewaySettings
from services.workflows.engine import ImageOf, Limits, WorkflowEngine


def engine_of(settings: GatewaySettings) -> WorkflowEngine:
    return WorkflowEngine(Limits(settings.workflow_max_steps, settings.workflow_max_definition_bytes,
                                 settings.workflow_max_images, settings.workflow_max_crops_per_image,
                                 settings.workflow_cpu_threads, settings.workflow_cpu_nice,
                                 settings.workflow_cpu_sched_idle))


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

    async def infer(self, model: descriptor_pb2.ModelDescriptor, images: list[inference_pb2.Image],
                    parameters: inference_pb2.InferenceParameters) -> list[inference_pb2.InferResponse]:
        return await self.gateway.infer_images(self.caller, model, images, parameters, self._remaining(),
                                               background=True)


    async def infer_request(self, model: descriptor_pb2.ModelDescriptor,
                            request: inference_pb2.InferRequest) -> inference_pb2.InferResponse:
        return await self.gateway.infer(self.caller, request, self._remaining(), model, background=True)

    def _remaining(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded("the workflow run's deadline passed; send a longer timeout")
        return remaining


async def run_workflow(engine: WorkflowEngine, gateway: Gateway, caller: Caller, definition: Any,
                       inputs: dict[str, Any], image_of: ImageOf, timeout_s: float | None,
                       excluded: list[str] | None = None, workflow: str = "inline") -> list[dict[str, Any]]:
    return await engine.run(definition, inputs, image_of, CallerModels(gateway, caller.in_workspace(), timeout_s),
                            excluded or (), workflow)
