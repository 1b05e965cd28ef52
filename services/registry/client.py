"""Calls to the registry from other services (gateway, worker), failing over between its replicas.

``addresses`` is a comma-separated list of ``host:port`` targets; an entry may also be a gRPC
name such as ``dns:///registry.fleet.svc:50052`` that resolves to several replicas (the channel
then balances over all of them). A call that finds a replica unavailable moves on to the next;
the replica that answered is tried first next time. Where every replica is unavailable, the call waits once
more, up to ``RECONNECT_WAIT_S`` in all, for one to connect: after a registry restarts, a channel is still
backing off between connection attempts (up to ``channels``' two seconds) and fails calls at once, so without
the wait a process that last tried while the registry was down fails its callers for a while after it is back.
Statuses come back as domain errors, and no message names an internal address.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fleet.internal.v1 import descriptor_pb2, registry_pb2, registry_pb2_grpc
from fleet.internal.v1 import pipeline_records_pb2 as records_pb2
from fleet.internal.v1 import pipeline_records_pb2_grpc as records_pb2_grpc
from services.common.channels import open_channel
from services.common.errors import Unavailable
from services.common.rpc_client import ClientMethod
from services.common.rpc_errors import from_rpc_error
from services.common.tls import ClientTls

log = logging.getLogger("fleet.registry.client")

CALL_TIMEOUT_S = 5.0
RECONNECT_WAIT_S = 3.0  # channels' longest pause between connection attempts (2 s), its jitter and a connect
ADMIN_HEADER = "x-fleet-admin-sha256"
_RETRY_ELSEWHERE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
_SERVICES = {name: service.full_name for service in (registry_pb2.DESCRIPTOR.services_by_name["RegistryService"],
                                                     registry_pb2.DESCRIPTOR.services_by_name["RegistryAdminService"],
                                                     records_pb2.DESCRIPTOR.services_by_name["PipelineRecordService"])
             for name in service.methods_by_name}
# One per RPC, made at its first call (a worker only ever resolves): the grpc_client_* metrics and CLIENT
# spans of the calls, each replica tried counting once.
_METHODS: dict[str, ClientMethod] = {}


def _method(name: str) -> ClientMethod:
    method = _METHODS.get(name)
    if method is None:
        method = _METHODS[name] = ClientMethod(_SERVICES[name], name)
    return method


def parse_addresses(addresses: str) -> list[str]:
    found = [a.strip() for a in addresses.split(",") if a.strip()]
    if not found:
        raise ValueError("no registry address given")
    return found


class _Replica:
    def __init__(self, address: str, max_message_bytes: int, tls: ClientTls | None) -> None:
        self.address = address
        self.channel = open_channel(address, max_message_bytes, tls)
        self.registry = registry_pb2_grpc.RegistryServiceStub(self.channel)
        self.admin = registry_pb2_grpc.RegistryAdminServiceStub(self.channel)
        self.pipelines = records_pb2_grpc.PipelineRecordServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)


async def _connected(replica: _Replica, wait_s: float) -> bool:
    """Whether the replica's channel is connected, or connects within ``wait_s``."""
    try:
        await asyncio.wait_for(replica.channel.channel_ready(), wait_s)
    except asyncio.TimeoutError:
        return False
    return True


class RegistryClient:
    def __init__(self, addresses: str, max_message_bytes: int, tls: ClientTls | None = None,
                 timeout_s: float = CALL_TIMEOUT_S) -> None:
        self.replicas = [_Replica(a, max_message_bytes, tls) for a in parse_addresses(addresses)]
        self.timeout_s = timeout_s
        self._first = 0

    @property
    def address(self) -> str:
        return ",".join(r.address for r in self.replicas)

    async def check(self, timeout_s: float = 1.0) -> None:
        """Return once a replica reports SERVING; Unavailable when none does."""
        for replica in self.replicas:
            try:
                reply = await replica.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
            except grpc.aio.AioRpcError:
                continue
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        raise Unavailable(f"no registry replica is serving ({len(self.replicas)} checked)")

    async def _call(self, method: str, pick, request, metadata: tuple[tuple[str, str], ...] = (),
                    retry_deadline: bool = True):  # type: ignore[no-untyped-def]
        """``pick(replica)`` is the stub method; tries each replica in turn while they are unavailable."""
        client_method = _method(method)
        count = len(self.replicas)
        last: grpc.aio.AioRpcError | None = None
        for step in range(2 * count):
            index = (self._first + step) % count
            replica = self.replicas[index]
            if step >= count:  # every replica was unavailable: wait once for one to connect
                if step == count and last is not None and last.code() != grpc.StatusCode.UNAVAILABLE:
                    break  # (one that did not answer in time is not waited for again)
                if not await _connected(replica, RECONNECT_WAIT_S / count):
                    continue
            try:
                reply = await client_method(pick(replica), request, self.timeout_s, metadata)
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                if code == grpc.StatusCode.UNAVAILABLE or (retry_deadline and code in _RETRY_ELSEWHERE):
                    last = exc
                    log.warning("registry replica unavailable; trying the next",
                                extra={"replica": replica.address, "code": code.name})
                    continue
                raise from_rpc_error(exc, "registry") from None
            self._first = index
            return reply
        assert last is not None
        if last.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise Unavailable(f"the registry did not answer in time ({count} replica(s) tried); try again shortly")
        raise Unavailable(f"the registry is unavailable ({count} replica(s) tried); try again shortly")

    async def authenticate(self, key_sha256: str) -> registry_pb2.AuthenticateResponse:
        return await self._call("Authenticate", lambda r: r.registry.Authenticate,
                                registry_pb2.AuthenticateRequest(api_key_sha256=key_sha256))

    async def resolve(self, model_id: str, workspace: str) -> descriptor_pb2.ModelDescriptor:
        reply = await self._call("ResolveModel", lambda r: r.registry.ResolveModel,
                                 registry_pb2.ResolveModelRequest(model_id=model_id, workspace=workspace))
        return reply.model

    async def list_models(self, workspace: str, page_size: int = 500) -> list[descriptor_pb2.ModelDescriptor]:
        """Every model the workspace may use (its own and public ones), all pages."""
        models: list[descriptor_pb2.ModelDescriptor] = []
        token = ""
        while True:
            reply = await self._call("ListModels", lambda r: r.registry.ListModels, registry_pb2.ListModelsRequest(
                workspace=workspace, page_size=page_size, page_token=token))
            models.extend(reply.models)
            token = reply.next_page_token
            if not token:
                return models

    async def get_workflow(self, workspace: str, owner: str, workflow_id: str,
                           version_id: str = "") -> registry_pb2.GetWorkflowResponse:
        return await self._call("GetWorkflow", lambda r: r.registry.GetWorkflow, registry_pb2.GetWorkflowRequest(
            workspace=workspace, owner=owner, workflow_id=workflow_id, version_id=version_id))

    async def admin(self, method: str, request, admin_sha256: str):  # type: ignore[no-untyped-def]
        """Forward a fleet.v1.AdminService request to the registry's admin service; returns its response."""
        wrapper = getattr(registry_pb2, f"RegistryAdminService{method}Request")
        reply = await self._call(method, lambda r: getattr(r.admin, method), wrapper(request=request),
                                 metadata=((ADMIN_HEADER, admin_sha256),), retry_deadline=False)
        return reply.response

    # ---- video pipelines' definitions (services.pipelines) ----------------------------------------
    async def put_pipeline(self, pipeline_id: str, workspace: str, definition_json: str) -> None:
        record = records_pb2.PipelineRecord(pipeline_id=pipeline_id, workspace=workspace,
                                            definition_json=definition_json)
        await self._call("PutPipelineRecord", lambda r: r.pipelines.PutPipelineRecord,
                         records_pb2.PutPipelineRecordRequest(record=record))

    async def get_pipeline(self, pipeline_id: str) -> tuple[str, str] | None:
        """(workspace, definition JSON), or None when there is no such pipeline."""
        reply = await self._call("GetPipelineRecord", lambda r: r.pipelines.GetPipelineRecord,
                                 records_pb2.GetPipelineRecordRequest(pipeline_id=pipeline_id))
        return (reply.record.workspace, reply.record.definition_json) if reply.HasField("record") else None

    async def delete_pipeline(self, pipeline_id: str) -> bool:
        reply = await self._call("DeletePipelineRecord", lambda r: r.pipelines.DeletePipelineRecord,
                                 records_pb2.DeletePipelineRecordRequest(pipeline_id=pipeline_id))
        return reply.deleted

    async def pipeline_ids(self, workspace: str = "") -> list[str]:
        reply = await self._call("ListPipelineRecords", lambda r: r.pipelines.ListPipelineRecords,
                                 records_pb2.ListPipelineRecordsRequest(workspace=workspace))
        return list(reply.pipeline_ids)

    async def close(self) -> None:
        for replica in self.replicas:
            await replica.channel.close()


__all__ = ["ADMIN_HEADER", "RegistryClient", "parse_addresses"]
