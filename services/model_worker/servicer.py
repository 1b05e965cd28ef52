"""fleet.internal.v1.ModelWorkerService: protobuf <-> domain, nothing more (each RPC one unary call)."""

from __future__ import annotations

import grpc

from fleet.internal.v1 import worker_pb2, worker_pb2_grpc
from fleet.v1 import inference_pb2
from services.common import descriptors
from services.common.rpc import rpc
from services.model_worker import converters, crops
from services.model_worker.worker import Worker

SERVICE_NAME = worker_pb2.DESCRIPTOR.services_by_name["ModelWorkerService"].full_name


class WorkerServicer(worker_pb2_grpc.ModelWorkerServiceServicer):
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.records = descriptors.RecordCache()

    @rpc(SERVICE_NAME)
    async def Infer(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        record = self.records.get(request.model)
        if request.require_loaded and not self.worker.holds(record):
            return worker_pb2.ModelWorkerServiceInferResponse(not_loaded=True)
        out = await self.worker.infer(
            record,
            converters.inputs_from_proto(request.request, record.spec, record.model_id),
            converters.params_from_proto(request.request.parameters),
            background=request.priority == worker_pb2.PRIORITY_BACKGROUND,
        )
        return worker_pb2.ModelWorkerServiceInferResponse(
            response=converters.response_to_proto(out, self.worker.worker_id)
        )

    @rpc(SERVICE_NAME)
    async def InferBatch(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        record = self.records.get(request.model)
        if request.require_loaded and not self.worker.holds(record):
            return worker_pb2.ModelWorkerServiceInferBatchResponse(not_loaded=True)
        batch = request.request
        outcomes = await self.worker.infer_many(
            record, [converters.image_or_error(i) for i in batch.images],
            converters.params_from_proto(batch.parameters), background=request.priority == worker_pb2.PRIORITY_BACKGROUND,
        )
        items = [converters.batch_item_to_proto(o, self.worker.worker_id) for o in outcomes]
        return worker_pb2.ModelWorkerServiceInferBatchResponse(response=inference_pb2.InferBatchResponse(items=items))

    @rpc(SERVICE_NAME)
    async def InferCrops(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        plan = request.plan
        detector, classifier = self.records.get(plan.detector), self.records.get(plan.classifier)
        missing = [r.model_id for r in (detector, classifier) if not self.worker.holds(r)]
        if missing:
            return worker_pb2.ModelWorkerServiceInferCropsResponse(not_loaded=True, not_loaded_models=missing)
        out = await self.worker.infer_crops(crops.CropPlan(
            detector, converters.image_from_proto(plan.request.image),
            converters.params_from_proto(plan.request.parameters),
            classifier, converters.params_from_proto(plan.classifier_parameters), plan.max_crops,
            background=plan.priority == worker_pb2.PRIORITY_BACKGROUND))
        reply = worker_pb2.ModelWorkerServiceInferCropsResponse(
            detections=converters.response_to_proto(out.detections, self.worker.worker_id),
            crops_skipped=out.crops is None)
        reply.crops.items.extend(converters.batch_item_to_proto(o, self.worker.worker_id) for o in out.crops or ())
        return reply

    @rpc(SERVICE_NAME)
    async def LoadModel(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        model, already = await self.worker.load(self.records.get(request.model))
        return worker_pb2.LoadModelResponse(
            model=converters.loaded_to_proto(model, self.worker.worker_id), already_loaded=already
        )

    @rpc(SERVICE_NAME)
    async def UnloadModel(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        return worker_pb2.UnloadModelResponse(unloaded=await self.worker.unload(request.model_id))

    @rpc(SERVICE_NAME)
    async def ClearModels(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        return worker_pb2.ModelWorkerServiceClearModelsResponse(model_ids=await self.worker.clear(request.workspace))

    @rpc(SERVICE_NAME)
    async def DescribeModels(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        return worker_pb2.ModelWorkerServiceDescribeModelsResponse(
            models=[converters.loaded_to_proto(m, self.worker.worker_id) for m in self.worker.manager.models()],
            load=converters.worker_load(self.worker.state.snapshot()),
        )
