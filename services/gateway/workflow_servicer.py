"""fleet.v1.WorkflowService: authenticate once, protobuf <-> the engine's JSON, delegate to the gateway's engine."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2

from fleet.v1 import workflow_pb2, workflow_pb2_grpc
from services.common.errors import FleetError, InvalidArgument
from services.common.rpc import rpc, rpc_stream
from services.common.rpc_errors import error_status
from services.gateway.auth import Authenticator
from services.gateway.caller import Caller
from services.gateway.gateway import Gateway
from services.gateway.streaming import StreamLimits, bounded_map
from services.gateway.workflow_store import StoredWorkflows
from services.gateway.workflows import run_workflow, validate_workflow
from services.workflows.engine import WorkflowEngine

SERVICE_NAME = workflow_pb2.DESCRIPTOR.services_by_name["WorkflowService"].full_name


def plain(value: Any) -> Any:
    """JSON from a Struct: whole numbers as ints (a Struct carries every number as a double)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def result_of(output: dict[str, Any]) -> workflow_pb2.WorkflowResult:
    """One input image's outputs: images as JPEG bytes, everything else as JSON values (built with the Struct
    helpers, about three times faster than json_format)."""
    result = workflow_pb2.WorkflowResult()
    for name, value in output.items():
        field = result.fields[name]
        if isinstance(value, dict) and value.get("type") == "base64" and isinstance(value.get("value"), str):
            field.image = base64.b64decode(value["value"])
        elif isinstance(value, dict):
            field.json.struct_value.SetInParent()  # (an empty dict is an answer too: update({}) sets nothing)
            field.json.struct_value.update(value)
        elif isinstance(value, list):
            field.json.list_value.SetInParent()
            field.json.list_value.extend(value)
        elif value is None:
            field.json.null_value = struct_pb2.NULL_VALUE
        elif isinstance(value, bool):
            field.json.bool_value = value
        elif isinstance(value, int | float):
            field.json.number_value = value
        else:
            field.json.string_value = str(value)
    return result


class Definitions:
    """Definitions sent inline, as JSON by the digest of their Struct: a stream or a busy caller sending the same
    one each time converts it once."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._by_digest: OrderedDict[bytes, dict[str, Any]] = OrderedDict()

    def of(self, struct: struct_pb2.Struct) -> dict[str, Any]:
        digest = hashlib.sha256(struct.SerializeToString(deterministic=True)).digest()
        found = self._by_digest.get(digest)
        if found is None:
            found = self._by_digest[digest] = plain(json_format.MessageToDict(struct))
            while len(self._by_digest) > self.size:
                self._by_digest.popitem(last=False)
        else:
            self._by_digest.move_to_end(digest)
        return found


class WorkflowServicer(workflow_pb2_grpc.WorkflowServiceServicer):
    def __init__(self, gateway: Gateway, engine: WorkflowEngine, auth: Authenticator, stored: StoredWorkflows,
                 stream_limits: StreamLimits | None = None) -> None:
        self.gateway, self.engine, self.auth, self.stored = gateway, engine, auth, stored
        self.stream_limits = stream_limits or StreamLimits()
        self.definitions = Definitions()

    async def _definition(self, caller: Caller, request: workflow_pb2.RunWorkflowRequest
                          | workflow_pb2.ValidateWorkflowRequest) -> tuple[dict[str, Any], str, str]:
        """(definition, metrics label, stored version or "") of the request's oneof workflow."""
        which = request.WhichOneof("workflow")
        if which == "definition":
            return self.definitions.of(request.definition), "inline", ""
        if which == "stored":
            s = request.stored
            return await self.stored.resolve(caller, s.workspace, s.workflow_id, s.version_id)
        raise InvalidArgument("set definition (the workflow's JSON) or stored (workspace, workflow_id)")

    async def run(self, caller: Caller, request: workflow_pb2.RunWorkflowRequest, timeout_s: float | None,
                   resolved: tuple[Any, str] | None = None) -> workflow_pb2.RunWorkflowResponse:
        """``resolved``: the request's (definition, or its compiled graph; metrics label) when the caller's edge
        already resolved it."""
        started = time.perf_counter()
        definition, label = resolved if resolved is not None else (await self._definition(caller, request))[:2]
        inputs: dict[str, Any] = plain(json_format.MessageToDict(request.parameters)) if request.parameters else {}
        inputs.update({name: list(images.images) for name, images in request.images.items()})
        outputs = await run_workflow(self.engine, self.gateway, caller, definition, inputs, lambda image: image,
                                     timeout_s, list(request.excluded_fields), label)
        return workflow_pb2.RunWorkflowResponse(outputs=[result_of(o) for o in outputs],
                                                gateway_ms=(time.perf_counter() - started) * 1e3)

    @rpc(SERVICE_NAME)
    async def RunWorkflow(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        return await self.run(await self.auth.caller_of(context), request, context.time_remaining())

    @rpc(SERVICE_NAME)
    async def ValidateWorkflow(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        caller = await self.auth.caller_of(context)
        definition, _, version = await self._definition(caller, request)
        compiled = await validate_workflow(self.engine, self.gateway, caller, definition, context.time_remaining())
        return workflow_pb2.ValidateWorkflowResponse(version_id=version, inputs=[
            workflow_pb2.WorkflowInput(name=i.name, image=i.image, required=not i.image and not i.has_default)
            for i in compiled.inputs])

    @rpc_stream(SERVICE_NAME)
    async def RunWorkflowStream(self, request_iterator, context: grpc.aio.ServicerContext):  # noqa: N802
        caller = await self.auth.caller_of(context)

        async def items() -> AsyncIterator[tuple[str, workflow_pb2.RunWorkflowRequest]]:
            async for item in request_iterator:
                yield item.correlation_id, item.request

        outcomes = bounded_map(lambda request: self.run(caller, request, context.time_remaining()), items(),
                               self.stream_limits)
        async with contextlib.aclosing(outcomes):
            async for correlation_id, outcome in outcomes:
                if isinstance(outcome, FleetError):
                    yield workflow_pb2.RunWorkflowStreamResponse(correlation_id=correlation_id,
                                                                 error=error_status(outcome))
                else:
                    yield workflow_pb2.RunWorkflowStreamResponse(correlation_id=correlation_id, response=outcome)
