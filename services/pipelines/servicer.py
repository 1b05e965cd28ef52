"""fleet.v1.PipelineService: authenticate the call once, protobuf <-> domain, delegate to the manager."""

from __future__ import annotations

import grpc

from fleet.v1 import pipelines_pb2, pipelines_pb2_grpc
from services.common.errors import Unauthenticated
from services.common.rpc import rpc, rpc_stream
from services.gateway.auth import bearer_key
from services.pipelines import converters
from services.pipelines.access import Access
from services.pipelines.forwarding import FORWARDED, PushRouter
from services.pipelines.manager import PipelineManager
from services.pipelines.requests import Requester
from services.pipelines.spec import Desired
from services.pipelines.subscription import follow

SERVICE_NAME = pipelines_pb2.DESCRIPTOR.services_by_name["PipelineService"].full_name


class PipelineServicer(pipelines_pb2_grpc.PipelineServiceServicer):
    def __init__(self, manager: PipelineManager, access: Access, pushes: PushRouter) -> None:
        self.manager, self.access, self.pushes = manager, access, pushes

    async def _caller(self, context: grpc.aio.ServicerContext) -> Requester:
        try:
            key = bearer_key(context.invocation_metadata())
        except Unauthenticated:
            key = ""
        return await self.access.requester(key)

    async def _info(self, caller: Requester, pipeline_id: str) -> pipelines_pb2.PipelineInfo:
        """The pipeline's definition with its current status report."""
        spec = await self.manager.spec(caller, pipeline_id)
        return converters.info(spec, await self.manager.status(caller, pipeline_id))

    @rpc(SERVICE_NAME)
    async def CreatePipeline(self, request, context):  # noqa: N802
        caller = await self._caller(context)
        spec = await self.manager.initialise(caller, converters.new_pipeline(request))
        return pipelines_pb2.CreatePipelineResponse(pipeline=await self._info(caller, spec.pipeline_id))

    @rpc(SERVICE_NAME)
    async def ListPipelines(self, request, context):  # noqa: N802
        return pipelines_pb2.ListPipelinesResponse(pipeline_ids=await self.manager.list(await self._caller(context)))

    @rpc(SERVICE_NAME)
    async def GetPipeline(self, request, context):  # noqa: N802
        return pipelines_pb2.GetPipelineResponse(pipeline=await self._info(await self._caller(context),
                                                                           request.pipeline_id))

    @rpc(SERVICE_NAME)
    async def PausePipeline(self, request, context):  # noqa: N802
        caller = await self._caller(context)
        await self.manager.set_desired(caller, request.pipeline_id, Desired.PAUSED)
        return pipelines_pb2.PausePipelineResponse(pipeline=await self._info(caller, request.pipeline_id))

    @rpc(SERVICE_NAME)
    async def ResumePipeline(self, request, context):  # noqa: N802
        caller = await self._caller(context)
        await self.manager.set_desired(caller, request.pipeline_id, Desired.RUNNING)
        return pipelines_pb2.ResumePipelineResponse(pipeline=await self._info(caller, request.pipeline_id))

    @rpc(SERVICE_NAME)
    async def TerminatePipeline(self, request, context):  # noqa: N802
        await self.manager.terminate(await self._caller(context), request.pipeline_id)
        return pipelines_pb2.TerminatePipelineResponse()

    @rpc(SERVICE_NAME)
    async def AddSource(self, request, context):  # noqa: N802
        caller = await self._caller(context)
        spec = await self.manager.spec(caller, request.pipeline_id)
        source = converters.source_of(request.source, len(spec.sources))
        await self.manager.add_source(caller, request.pipeline_id, source)
        return pipelines_pb2.AddSourceResponse(pipeline=await self._info(caller, request.pipeline_id))

    @rpc(SERVICE_NAME)
    async def RemoveSource(self, request, context):  # noqa: N802
        caller = await self._caller(context)
        await self.manager.remove_source(caller, request.pipeline_id, request.source_id)
        return pipelines_pb2.RemoveSourceResponse(pipeline=await self._info(caller, request.pipeline_id))

    @rpc_stream(SERVICE_NAME, server_streaming=True)
    async def SubscribeResults(self, request, context):  # noqa: N802
        caller = await self._caller(context)
        await self.manager.spec(caller, request.pipeline_id)
        async for body in follow(self.manager, caller, request.pipeline_id):
            yield pipelines_pb2.SubscribeResultsResponse(result=converters.result(body))

    @rpc_stream(SERVICE_NAME)
    async def PushFrames(self, request_iterator, context):  # noqa: N802
        caller = await self._caller(context)
        forwarded = any(key == FORWARDED for key, _ in context.invocation_metadata() or ())
        async for frame_id in self.pushes.frames(caller, converters.push_items(request_iterator), forwarded):
            yield pipelines_pb2.PushFramesResponse(frame_id=frame_id)
