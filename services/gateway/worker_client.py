"""Calls to one model worker: the only gateway module that speaks the worker's gRPC contract.

Statuses come back as domain errors. ``WorkerUnavailable`` means the call may be retried on another
worker: either the worker could not be reached or is going away (``answered`` false: the gateway
takes it out of rotation), or it answered UNAVAILABLE about this request (``answered`` true: it is up,
for example a model was unloaded under the request). ``ModelNotHeld`` means a call that asked for an
existing copy found none. Every other error is the worker's answer about the request. Messages never
name the worker's address.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fleet.internal.v1 import descriptor_pb2, worker_pb2, worker_pb2_grpc
from fleet.v1 import inference_pb2, model_pb2
from services.common.channels import open_channel
from services.common.context import REQUEST_ID_HEADER
from services.common.errors import Unavailable
from services.common.rpc_client import ClientMethod
from services.common.rpc_errors import from_rpc_error
from services.common.tls import ClientTls

HEALTH_TIMEOUT_S = 1.0
_SERVICE = worker_pb2.DESCRIPTOR.services_by_name["ModelWorkerService"].full_name
_INFER, _INFER_BATCH, _INFER_CROPS, _LOAD, _UNLOAD, _CLEAR, _DESCRIBE = (
    ClientMethod(_SERVICE, name)
    for name in ("Infer", "InferBatch", "InferCrops", "LoadModel", "UnloadModel", "ClearModels", "DescribeModels")
)


class WorkerUnavailable(Unavailable):
    """Another worker may serve the call."""

    def __init__(self, message: str, answered: bool = False) -> None:
        super().__init__(message)
        self.answered = answered


class ModelNotHeld(Exception):
    """The worker does not hold the model (a call with ``require_loaded`` ran nothing); ``args``: its id (ids)."""


def _answered(exc: grpc.aio.AioRpcError) -> bool:
    """The status came from the worker's own handler (which always sends its request id), not the transport."""
    return any(key == REQUEST_ID_HEADER for key, _ in exc.trailing_metadata() or ())


def _priority(background: bool) -> worker_pb2.Priority:
    """``background``: the call serves work a caller is not waiting on alone (a workflow's model step); the
    worker serves interactive calls first (see worker.proto's ``Priority``)."""
    return worker_pb2.PRIORITY_BACKGROUND if background else worker_pb2.PRIORITY_UNSPECIFIED


class WorkerClient:
    def __init__(self, address: str, max_message_bytes: int, tls: ClientTls | None = None) -> None:
        self.address = address
        self.channel = open_channel(address, max_message_bytes, tls)
        self._stub = worker_pb2_grpc.ModelWorkerServiceStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)

    async def _call(self, method: ClientMethod, stub_method, request, timeout_s: float):  # type: ignore[no-untyped-def]
        try:
            return await method(stub_method, request, timeout_s)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE:
                raise WorkerUnavailable(exc.details() or "the model worker is unavailable", _answered(exc)) from None
            raise from_rpc_error(exc, "model worker") from None

    async def infer(self, model: descriptor_pb2.ModelDescriptor, request: inference_pb2.InferRequest,
                    timeout_s: float, require_loaded: bool = False,
                    background: bool = False) -> inference_pb2.InferResponse:
        call = worker_pb2.ModelWorkerServiceInferRequest(model=model, request=request, require_loaded=require_loaded,
                                                         priority=_priority(background))
        reply = await self._call(_INFER, self._stub.Infer, call, timeout_s)
        if reply.not_loaded:
            raise ModelNotHeld(model.model_id)
        return reply.response

    async def infer_batch(self, model: descriptor_pb2.ModelDescriptor, request: inference_pb2.InferBatchRequest,
                          timeout_s: float, require_loaded: bool = False,
                          background: bool = False) -> inference_pb2.InferBatchResponse:
        call = worker_pb2.ModelWorkerServiceInferBatchRequest(model=model, request=request,
                                                              require_loaded=require_loaded,
                                                              priority=_priority(background))
        reply = await self._call(_INFER_BATCH, self._stub.InferBatch, call, timeout_s)
        if reply.not_loaded:
            raise ModelNotHeld(model.model_id)
        return reply.response

    async def infer_crops(self, plan: worker_pb2.CropPlan,
                          timeout_s: float) -> worker_pb2.ModelWorkerServiceInferCropsResponse:
        """A detect -> crop -> classify plan on this worker, which must hold both models (else ``ModelNotHeld``)."""
        reply = await self._call(_INFER_CROPS, self._stub.InferCrops,
                                 worker_pb2.ModelWorkerServiceInferCropsRequest(plan=plan), timeout_s)
        if reply.not_loaded:
            raise ModelNotHeld(*reply.not_loaded_models)
        return reply

    async def load(self, model: descriptor_pb2.ModelDescriptor, timeout_s: float) -> model_pb2.LoadedModel:
        return (await self._call(_LOAD, self._stub.LoadModel, worker_pb2.LoadModelRequest(model=model), timeout_s)).model

    async def unload(self, model_id: str, timeout_s: float) -> bool:
        reply = await self._call(_UNLOAD, self._stub.UnloadModel, worker_pb2.UnloadModelRequest(model_id=model_id), timeout_s)
        return reply.unloaded

    async def clear(self, workspace: str, timeout_s: float) -> list[str]:
        request = worker_pb2.ModelWorkerServiceClearModelsRequest(workspace=workspace)
        return list((await self._call(_CLEAR, self._stub.ClearModels, request, timeout_s)).model_ids)

    async def describe(self, timeout_s: float) -> worker_pb2.ModelWorkerServiceDescribeModelsResponse:
        return await self._call(_DESCRIBE, self._stub.DescribeModels,
                                worker_pb2.ModelWorkerServiceDescribeModelsRequest(), timeout_s)

    async def serving(self) -> bool:
        """The worker's health reports SERVING (false when unreachable or draining)."""
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(service=""), timeout=HEALTH_TIMEOUT_S)
        except grpc.aio.AioRpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    async def close(self) -> None:
        await self.channel.close()
