"""fleet.internal.v1.PipelineRecordService: video pipelines' definitions kept in the registry's database (the
system of record; the pipelines service owns their format, and their leases live in Redis)."""

from __future__ import annotations

from fleet.internal.v1 import pipeline_records_pb2 as pb
from fleet.internal.v1 import pipeline_records_pb2_grpc
from services.common.errors import InvalidArgument
from services.common.rpc import rpc
from services.registry.store.store import Store, now_utc

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["PipelineRecordService"].full_name
MAX_DEFINITION_BYTES = 256 * 1024


def _check_id(pipeline_id: str) -> str:
    if not 0 < len(pipeline_id) <= 64:
        raise InvalidArgument("a pipeline id is 1 to 64 characters")
    return pipeline_id


class PipelineRecordServicer(pipeline_records_pb2_grpc.PipelineRecordServiceServicer):
    def __init__(self, store: Store) -> None:
        self.store = store

    @rpc(SERVICE_NAME)
    async def PutPipelineRecord(self, request, context):  # noqa: N802
        record = request.record
        if not record.workspace or len(record.definition_json.encode()) > MAX_DEFINITION_BYTES:
            raise InvalidArgument(f"a pipeline record needs a workspace and a definition of at most "
                                  f"{MAX_DEFINITION_BYTES} bytes")
        async with self.store.write() as tx:
            await tx.ensure_workspace(record.workspace, now_utc())
            await tx.put_pipeline(_check_id(record.pipeline_id), record.workspace, record.definition_json, now_utc())
        return pb.PutPipelineRecordResponse()

    @rpc(SERVICE_NAME)
    async def GetPipelineRecord(self, request, context):  # noqa: N802
        async with self.store.read() as tx:
            found = await tx.pipeline(_check_id(request.pipeline_id))
        if found is None:
            return pb.GetPipelineRecordResponse()
        return pb.GetPipelineRecordResponse(record=pb.PipelineRecord(
            pipeline_id=request.pipeline_id, workspace=found[0], definition_json=found[1]))

    @rpc(SERVICE_NAME)
    async def DeletePipelineRecord(self, request, context):  # noqa: N802
        async with self.store.write() as tx:
            deleted = await tx.delete_pipeline(_check_id(request.pipeline_id))
        return pb.DeletePipelineRecordResponse(deleted=deleted)

    @rpc(SERVICE_NAME)
    async def ListPipelineRecords(self, request, context):  # noqa: N802
        async with self.store.read() as tx:
            return pb.ListPipelineRecordsResponse(pipeline_ids=await tx.pipeline_ids(request.workspace))
