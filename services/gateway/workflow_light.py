"""fleet.v1.WorkflowService on a public gateway with a workflow engine process, light runs kept here
(``FLEET_GATEWAY_WORKFLOWS_LIGHT_IN_GATEWAY``; docs/workflows.md, "Where the engine runs").

A ``RunWorkflow`` whose compiled graph is light (``Compiled.light``: model steps on the input images as they
came, pure-JSON blocks; no decoding, crops, drawing or image outputs) runs here, exactly as a gateway without an
engine process runs it (``WorkflowServicer``, the caller authenticated at this edge): it costs the gateway what an
``Infer`` costs, and saves the hop to the engine. Every other call goes on to the engine as it came (the
original bytes, ``WorkflowForwarder``; an inline definition already known to be heavy, by its bytes as sent,
is forwarded without parsing the request here): runs doing image work, anything this edge cannot parse, resolve or
compile (the engine answers those as it always does, so errors are the same either way), ``ValidateWorkflow``
(its answer does not depend on where it runs, and nothing is gained by checking here) and ``RunWorkflowStream``
(it serves pipelines, whose runs are the heavy ones).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from fleet.v1 import workflow_pb2
from services.common.rpc import rpc
from services.gateway.auth import Authenticator
from services.gateway.caller import Caller
from services.gateway.metrics import WORKFLOW_RUNS_BY_PLACE
from services.gateway.workflow_forward import SERVICE_NAME, WorkflowForwarder, workflow_handler
from services.gateway.workflow_servicer import WorkflowServicer
from services.gateway.workflow_store import StoredWorkflows
from services.gateway.workflows import is_light
from services.workflows.engine import WorkflowEngine

IN_GATEWAY = WORKFLOW_RUNS_BY_PLACE.labels("gateway", "grpc")
IN_ENGINE = WORKFLOW_RUNS_BY_PLACE.labels("engine", "grpc")
DEFINITION_FIELD = workflow_pb2.RunWorkflowRequest.DESCRIPTOR.fields_by_name["definition"].number
LENGTH_DELIMITED = 2


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


def inline_definition(request: bytes) -> bytes | None:
    """The bytes of a ``RunWorkflowRequest``'s inline definition, read off the wire without decoding the rest
    (the images are skipped, not copied); None where it has none, or not exactly one, or the bytes are not a
    plain message of length-delimited fields (the full parse decides then)."""
    found: bytes | None = None
    at = 0
    try:
        while at < len(request):
            tag, at = _varint(request, at)
            if tag & 7 != LENGTH_DELIMITED:
                return None
            size, at = _varint(request, at)
            if at + size > len(request):
                return None
            if tag >> 3 == DEFINITION_FIELD:
                if found is not None:
                    return None  # two parts merge into one definition: left to the parser
                found = request[at:at + size]
            at += size
    except ValueError:
        return None
    return found


class KnownDefinitions:
    """Whether an inline definition, by its bytes as sent, is light: a caller sending the same definition each
    time is decided once, and its heavy runs are forwarded without their request being parsed here."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._light: OrderedDict[bytes, bool] = OrderedDict()

    def get(self, definition: bytes) -> bool | None:
        found = self._light.get(definition)
        if found is not None:
            self._light.move_to_end(definition)
        return found

    def put(self, definition: bytes, light: bool) -> None:
        self._light[definition] = light
        while len(self._light) > self.size:
            self._light.popitem(last=False)


class LightOrForward:
    """Light ``RunWorkflow`` calls run here; everything else goes to the engine. ``handler()`` for the server."""

    def __init__(self, servicer: WorkflowServicer, forwarder: WorkflowForwarder, engine: WorkflowEngine,
                 auth: Authenticator, stored: StoredWorkflows) -> None:
        self.servicer, self.forwarder, self.engine, self.auth, self.stored = servicer, forwarder, engine, auth, stored
        self.known = KnownDefinitions()

    async def _light(self, request: workflow_pb2.RunWorkflowRequest, context: grpc.aio.ServicerContext,
                     ) -> tuple[Caller | None, tuple[dict[str, Any], str]] | None:
        """(the caller if already known, (definition, label)) of a light run; None: the engine's to run."""
        which = request.WhichOneof("workflow")
        if which == "definition":
            definition, label, caller = self.servicer.definitions.of(request.definition), "inline", None
        elif which == "stored":  # resolving needs the caller (and says NotFound as the engine would)
            caller = await self.auth.caller_of(context)
            s = request.stored
            definition, label, _ = await self.stored.resolve(caller, s.workspace, s.workflow_id, s.version_id)
        else:
            return None
        return (caller, (definition, label)) if is_light(self.engine, definition) else None

    @rpc(SERVICE_NAME)
    async def RunWorkflow(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:  # noqa: N802
        definition = inline_definition(request)
        if definition is not None and self.known.get(definition) is False:  # decided before: heavy
            IN_ENGINE.inc()
            return await self.forwarder.run(request, context)
        try:
            parsed = workflow_pb2.RunWorkflowRequest.FromString(request)
        except DecodeError:
            parsed = None
        light = await self._light(parsed, context) if parsed is not None else None
        if definition is not None and parsed is not None:
            self.known.put(definition, light is not None)
        if light is None:
            IN_ENGINE.inc()
            return await self.forwarder.run(request, context)
        caller, resolved = light
        IN_GATEWAY.inc()
        caller = caller or await self.auth.caller_of(context)
        reply = await self.servicer.run(caller, parsed, context.time_remaining(), resolved)
        return reply.SerializeToString()

    def handler(self) -> grpc.GenericRpcHandler:  # validating and streams always go to the engine
        return workflow_handler(self.RunWorkflow, self.forwarder.ValidateWorkflow, self.forwarder.RunWorkflowStream)
