"""inference.GRPCInferenceService (Open Inference Protocol / Triton): authenticate once, translate, delegate.

Health and server metadata need no API key (like the gRPC health service); every model call takes
the same ``authorization: Bearer <key>`` metadata as fleet.v1. Errors map to statuses through the
same ``@rpc`` decorator as fleet.v1, with the same messages.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator


from fleet_oip.v2 import grpc_service_pb2 as pb
from fleet_oip.v2 import grpc_service_pb2_grpc as pb_grpc
from services.common.errors import FleetError
from services.common.rpc import rpc, rpc_stream
from services.common.rpc_errors import error_text
from services.gateway.auth import Authenticator
from services.gateway.caller import Caller
from services.gateway.oip import codec
from services.gateway.oip.dataplane import EXTENSIONS, DataPlane
from services.gateway.streaming import StreamLimits, bounded_map

SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name


class OipServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, plane: DataPlane, auth: Authenticator, stream_limits: StreamLimits | None = None) -> None:
        self.plane, self.auth = plane, auth
        self.stream_limits = stream_limits or StreamLimits()

    @rpc(SERVICE)
    async def ServerLive(self, request, context):  # noqa: N802
        return pb.ServerLiveResponse(live=self.plane.live())

    @rpc(SERVICE)
    async def ServerReady(self, request, context):  # noqa: N802
        return pb.ServerReadyResponse(ready=self.plane.ready())

    @rpc(SERVICE)
    async def ServerMetadata(self, request, context):  # noqa: N802
        return pb.ServerMetadataResponse(name=self.plane.server_name, version=self.plane.server_version,
                                         extensions=list(EXTENSIONS))

    @rpc(SERVICE)
    async def ModelReady(self, request, context):  # noqa: N802
        ready = await self.plane.model_ready(await self.auth.caller_of(context), request.name, request.version)
        return pb.ModelReadyResponse(ready=ready)

    @rpc(SERVICE)
    async def ModelMetadata(self, request, context):  # noqa: N802
        meta = await self.plane.model_metadata(await self.auth.caller_of(context), request.name, request.version)
        return codec.metadata_response(meta)

    async def _infer(self, caller: Caller, request: pb.ModelInferRequest, timeout_s: float | None):  # noqa: ANN202
        result = await self.plane.infer(caller, request.model_name, request.model_version, request.id,
                                        codec.inputs(request), codec.parameters(request.parameters),
                                        [o.name for o in request.outputs], timeout_s)
        return codec.infer_response(result)

    @rpc(SERVICE)
    async def ModelInfer(self, request, context):  # noqa: N802
        return await self._infer(await self.auth.caller_of(context), request, context.time_remaining())

    @rpc_stream(SERVICE)
    async def ModelStreamInfer(self, request_iterator, context):  # noqa: N802
        caller = await self.auth.caller_of(context)

        async def items() -> AsyncIterator[tuple[str, pb.ModelInferRequest]]:
            async for item in request_iterator:
                yield item.id, item

        # The same bounds as fleet.v1's InferStream; each item gets what is left of the stream's deadline.
        outcomes = bounded_map(lambda r: self._infer(caller, r, context.time_remaining()), items(),
                               self.stream_limits)
        async with contextlib.aclosing(outcomes):  # closing the call cancels its items at once
            async for request_id, outcome in outcomes:
                if isinstance(outcome, FleetError):
                    yield pb.ModelStreamInferResponse(error_message=error_text(outcome),
                                                      infer_response=pb.ModelInferResponse(id=request_id))
                else:
                    yield pb.ModelStreamInferResponse(infer_response=outcome)

    @rpc(SERVICE)
    async def RepositoryIndex(self, request, context):  # noqa: N802
        entries = await self.plane.index(await self.auth.caller_of(context), request.ready)
        return pb.RepositoryIndexResponse(models=[
            pb.RepositoryIndexResponse.ModelIndex(name=e.name, version=e.version, state=e.state, reason=e.reason)
            for e in entries
        ])

    @rpc(SERVICE)
    async def RepositoryModelLoad(self, request, context):  # noqa: N802
        await self.plane.load(await self.auth.caller_of(context), request.model_name)
        return pb.RepositoryModelLoadResponse()

    @rpc(SERVICE)
    async def RepositoryModelUnload(self, request, context):  # noqa: N802
        await self.plane.unload(await self.auth.caller_of(context), request.model_name)
        return pb.RepositoryModelUnloadResponse()
