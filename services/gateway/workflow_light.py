"""fleet.v1.WorkflowService on a public gateway with a workflow engine process, light runs kept here
(``FLEET_GATEWAY_WORKFLOWS_LIGHT_IN_GATEWAY``; docs/workflows.md, "Where the engine runs").

A ``RunWorkflow`` whose compiled graph is light (``Compiled.light``: model steps on the input images as they
came, pure-JSON blocks; no decoding, crops, drawing or image outputs) runs here, exactly as a gateway without an
engine process runs it (``WorkflowServicer``, the caller authenticated at this edge): it costs the gateway what an
``Infer`` costs, and saves the hop to the engine. Every other call goes on to the engine as it came (the
original bytes, ``WorkflowForwarder``; an inline definition already known to be heavy, by its bytes as sent,
is forwarded without parsing the request here, and one known to be light runs on the graph compiled for it the
first time): runs doing image work, anything this edge cannot parse, resolve or compile (the engine answers
those as it always does, so errors are the same either way), ``ValidateWorkflow`` (its answer does not depend
on where it runs, and nothing is gained by checking here) and ``RunWorkflowStream`` (it serves pipelines, whose
runs are the heavy ones).
"""

from __future__ import annotations

from collections import OrderedDict

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
from services.gateway.workflows import light_graph
from services.workflows.compiler import Compiled
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
    """Inline definitions decided before, by their bytes as sent: a light one's compiled graph, False for a heavy
    one. A caller sending the same definition each time is decided once: its heavy runs are forwarded without
    their request being parsed here, its light ones run without the definition being converted or compiled
    again."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._graphs: OrderedDict[bytes, Compiled | bool] = OrderedDict()

    def get(self, definition: bytes) -> Compiled | bool | None:
        """The light definition's graph, False where it is heavy, None where it is not known."""
        found = self._graphs.get(definition)
        if found is not None:
            self._graphs.move_to_end(definition)
        return found

    def put(self, definition: bytes, graph: Compiled | None) -> None:
        """``graph``: the light definition's compiled graph; None: it is heavy."""
        self._graphs[definition] = False if graph is None else graph
        while len(self._graphs) > self.size:
            self._graphs.popitem(last=False)


class LightOrForward:
    """Light ``RunWorkflow`` calls run here; everything else goes to the engine. ``handler()`` for the server."""

    def __init__(self, servicer: WorkflowServicer, forwarder: WorkflowForwarder, engine: WorkflowEngine,
                 auth: Authenticator, stored: StoredWorkflows) -> None:
        self.servicer, self.forwarder, self.engine, self.auth, self.stored = servicer, forwarder, engine, auth, stored
        self.known = KnownDefinitions()

    async def _light(self, request: workflow_pb2.RunWorkflowRequest, context: grpc.aio.ServicerContext,
                     ) -> tuple[Caller | None, tuple[Compiled, str]] | None:
        """(the caller if already known, (compiled graph, label)) of a light run; None: the engine's to run."""
        which = request.WhichOneof("workflow")
        if which == "definition":
            definition, label, caller = self.servicer.definitions.of(request.definition), "inline", None
        elif which == "stored":  # resolving needs the caller (and says NotFound as the engine would)
            caller = await self.auth.caller_of(context)
            s = request.stored
            definition, label, _ = await self.stored.resolve(caller, s.workspace, s.workflow_id, s.version_id)
        else:
            return None
        graph = light_graph(self.engine, definition)
        return (caller, (graph, label)) if graph is not None else None

    @rpc(SERVICE_NAME)
    async def RunWorkflow(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:  # noqa: N802
        definition = inline_definition(request)
        known = self.known.get(definition) if definition is not None else None
        if known is False:  # decided before: heavy
            IN_ENGINE.inc()
            return await self.forwarder.run(request, context)
        try:
            parsed = workflow_pb2.RunWorkflowRequest.FromString(request)
        except DecodeError:
            parsed = None
        inline = parsed is not None and parsed.WhichOneof("workflow") == "definition"  # the bytes read above
        if isinstance(known, Compiled) and inline:
            light: tuple[Caller | None, tuple[Compiled, str]] | None = (None, (known, "inline"))
        else:
            light = await self._light(parsed, context) if parsed is not None else None
            if definition is not None and inline:
                self.known.put(definition, light[1][0] if light is not None else None)
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
