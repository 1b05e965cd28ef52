"""fleet.internal.v1.RegistryService and RegistryAdminService: protobuf <-> domain, nothing more."""

from __future__ import annotations

import grpc

from fleet.internal.v1 import registry_pb2 as pb
from fleet.internal.v1 import registry_pb2_grpc
from fleet.v1 import admin_pb2
from services.common import descriptors
from services.common.errors import PermissionDenied
from services.common.rpc import rpc
from services.registry import converters
from services.registry.admin import Admin
from services.registry.client import ADMIN_HEADER
from services.registry.service import Registry
from services.registry.workflow_servicer import WorkflowAdmin, WorkflowReads
from services.registry.workflows import Workflows

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RegistryService"].full_name
ADMIN_SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RegistryAdminService"].full_name


class RegistryServicer(WorkflowReads, registry_pb2_grpc.RegistryServiceServicer):
    def __init__(self, registry: Registry, workflows: Workflows) -> None:
        self.registry, self.workflows = registry, workflows

    @rpc(SERVICE_NAME)
    async def ResolveModel(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        record = await self.registry.resolve(request.model_id, request.workspace)
        return pb.ResolveModelResponse(model=descriptors.to_proto(record))

    @rpc(SERVICE_NAME)
    async def Authenticate(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        who = await self.registry.authenticate(request.api_key_sha256)
        return pb.AuthenticateResponse(workspace=who.workspace, key_id=who.key_id, admin=who.admin)

    @rpc(SERVICE_NAME)
    async def ListModels(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        records, token = await self.registry.list(request.workspace, request.page_size, request.page_token)
        return pb.ListModelsResponse(models=[descriptors.to_proto(r) for r in records], next_page_token=token)


class RegistryAdminServicer(WorkflowAdmin, registry_pb2_grpc.RegistryAdminServiceServicer):
    """Each call must carry the admin token's sha256 in metadata: the registry verifies admins itself."""

    def __init__(self, registry: Registry, admin: Admin, workflows: Workflows) -> None:
        self.registry, self.admin, self.workflows = registry, admin, workflows

    def _verify(self, context: grpc.aio.ServicerContext) -> None:
        presented = next((v for k, v in context.invocation_metadata() or () if k == ADMIN_HEADER), "")
        if not self.registry.is_admin(str(presented)):
            raise PermissionDenied("admin calls need the fleet's admin credential")

    @rpc(ADMIN_SERVICE_NAME)
    async def ApplyCatalog(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        self._verify(context)
        r = request.request
        changes = await self.admin.apply_catalog_text(r.catalog_yaml, r.source_name, r.base_dir, r.prune, r.dry_run)
        return pb.RegistryAdminServiceApplyCatalogResponse(response=admin_pb2.ApplyCatalogResponse(
            changes=[converters.change(c) for c in changes], applied=not r.dry_run))

    @rpc(ADMIN_SERVICE_NAME)
    async def RegisterModel(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        self._verify(context)
        record = converters.record_from_register(request.request)
        stored = await self.admin.register(record, request.request.replace)
        return pb.RegistryAdminServiceRegisterModelResponse(response=admin_pb2.RegisterModelResponse(
            model=converters.registered(stored)))

    @rpc(ADMIN_SERVICE_NAME)
    async def DeleteModel(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        self._verify(context)
        await self.admin.delete_model(request.request.model_id)
        return pb.RegistryAdminServiceDeleteModelResponse(response=admin_pb2.DeleteModelResponse())

    @rpc(ADMIN_SERVICE_NAME)
    async def ListModels(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        self._verify(context)
        r = request.request
        models, token = await self.admin.list_models(r.workspace, r.page_size, r.page_token)
        return pb.RegistryAdminServiceListModelsResponse(response=admin_pb2.ListModelsResponse(
            models=[converters.registered(m) for m in models], next_page_token=token))

    @rpc(ADMIN_SERVICE_NAME)
    async def SetAlias(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        self._verify(context)
        r = request.request
        previous = await self.admin.set_alias(r.workspace, r.alias, r.model_id)
        return pb.RegistryAdminServiceSetAliasResponse(response=admin_pb2.SetAliasResponse(
            previous_model_id=previous))

    @rpc(ADMIN_SERVICE_NAME)
    async def DeleteAlias(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        self._verify(context)
        await self.admin.delete_alias(request.request.workspace, request.request.alias)
        return pb.RegistryAdminServiceDeleteAliasResponse(response=admin_pb2.DeleteAliasResponse())

    @rpc(ADMIN_SERVICE_NAME)
    async def CreateApiKey(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        self._verify(context)
        key, secret = await self.admin.create_key(request.request.workspace, request.request.name)
        return pb.RegistryAdminServiceCreateApiKeyResponse(response=admin_pb2.CreateApiKeyResponse(
            key=converters.key_info(key), api_key=secret))

    @rpc(ADMIN_SERVICE_NAME)
    async def ListApiKeys(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        self._verify(context)
        keys = await self.admin.list_keys(request.request.workspace)
        return pb.RegistryAdminServiceListApiKeysResponse(response=admin_pb2.ListApiKeysResponse(
            keys=[converters.key_info(k) for k in keys]))

    @rpc(ADMIN_SERVICE_NAME)
    async def RevokeApiKey(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        self._verify(context)
        key = await self.admin.revoke_key(request.request.key_id)
        return pb.RegistryAdminServiceRevokeApiKeyResponse(response=admin_pb2.RevokeApiKeyResponse(
            key=converters.key_info(key)))

