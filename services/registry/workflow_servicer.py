"""The stored-workflow methods of RegistryService and RegistryAdminService (mixed into their servicers)."""

from __future__ import annotations

import grpc

from fleet.internal.v1 import registry_pb2 as pb
from fleet.v1 import admin_pb2
from services.common.rpc import rpc
from services.registry.converters import _ts
from services.registry.store.records import StoredWorkflow
from services.registry.workflows import Workflows

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RegistryService"].full_name
ADMIN_SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RegistryAdminService"].full_name


def summary(w: StoredWorkflow) -> admin_pb2.WorkflowSummary:
    return admin_pb2.WorkflowSummary(workspace=w.workspace, workflow_id=w.workflow_id,
                                     version_id=str(w.current_version), versions=w.versions, public=w.public,
                                     updated_at=_ts(w.updated_at))


class WorkflowReads:
    workflows: Workflows

    @rpc(SERVICE_NAME)
    async def GetWorkflow(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        definition, version = await self.workflows.get(request.workspace, request.owner, request.workflow_id,
                                                       request.version_id)
        return pb.GetWorkflowResponse(definition_json=definition, version_id=version)


class WorkflowAdmin:
    workflows: Workflows

    def _verify(self, context: grpc.aio.ServicerContext) -> None:  # the servicer's own
        raise NotImplementedError

    @rpc(ADMIN_SERVICE_NAME)
    async def PutWorkflow(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        self._verify(context)
        r = request.request
        stored = await self.workflows.put(r.workspace, r.workflow_id, r.definition_json, r.public)
        return pb.RegistryAdminServicePutWorkflowResponse(response=admin_pb2.PutWorkflowResponse(
            workflow=summary(stored)))

    @rpc(ADMIN_SERVICE_NAME)
    async def ListWorkflows(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        self._verify(context)
        found = await self.workflows.list(request.request.workspace)
        return pb.RegistryAdminServiceListWorkflowsResponse(response=admin_pb2.ListWorkflowsResponse(
            workflows=[summary(w) for w in found]))

    @rpc(ADMIN_SERVICE_NAME)
    async def DeleteWorkflow(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        self._verify(context)
        await self.workflows.delete(request.request.workspace, request.request.workflow_id)
        return pb.RegistryAdminServiceDeleteWorkflowResponse(response=admin_pb2.DeleteWorkflowResponse())
