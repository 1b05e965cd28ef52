"""The HTTP workflow routes on a public gateway with a workflow engine process, light runs kept here
(``FLEET_GATEWAY_WORKFLOWS_LIGHT_IN_GATEWAY``; docs/workflows.md, "Where the engine runs").

A run whose definition (the body's ``specification``, or a stored workflow resolved through this gateway's
cache) compiles to a light graph (``Compiled.light``: no decoding, crops, drawing or image outputs) runs here,
as the in-process routes (``services.gateway.http.workflows``) run it; every other request goes to the engine's
HTTP API as it came (``HttpForwarder``): runs doing image work, bodies this edge cannot read (the engine answers
them as it always does), and the validate, describe and schema routes.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from services.gateway.http import workflow_forward
from services.gateway.http.context import HttpContext
from services.gateway.http.workflow_forward import HttpForwarder
from services.gateway.http.workflows import RunBody, SpecRunBody, StoredRunBody, run_definition
from services.gateway.metrics import WORKFLOW_RUNS_BY_PLACE
from services.gateway.workflows import light_graph

IN_GATEWAY = WORKFLOW_RUNS_BY_PLACE.labels("gateway", "http")
IN_ENGINE = WORKFLOW_RUNS_BY_PLACE.labels("engine", "http")
RUN_PATHS = {"/workflows/run", "/infer/workflows"}
STORED_PATHS = {"/{workspace}/workflows/{workflow_id}", "/infer/workflows/{workspace}/{workflow_id}"}
Body = TypeVar("Body", bound=RunBody)


async def _body(request: Request, model: type[Body]) -> Body | None:
    """The request's body as the in-process route reads it; None where it would refuse it (the engine then
    answers, with its own words)."""
    try:
        raw: Any = json.loads(await request.body())
        return model.model_validate(raw) if isinstance(raw, dict) else None
    except (ValueError, ValidationError):
        return None


def router(ctx: HttpContext, forwarder: HttpForwarder) -> APIRouter:
    api = APIRouter(tags=["Workflows"])

    async def forward(request: Request) -> Response:
        return await forwarder.forward(request)

    async def engine_run(request: Request) -> Response:
        IN_ENGINE.inc()
        return await forwarder.forward(request)

    async def run(request: Request) -> Response:
        body = await _body(request, SpecRunBody)
        graph = light_graph(ctx.workflows, body.specification) if body is not None else None
        if body is None or graph is None:
            return await engine_run(request)
        IN_GATEWAY.inc()
        caller = await ctx.caller(request, body.api_key)
        return JSONResponse(jsonable_encoder(await run_definition(ctx, request, caller, graph, "inline", body)))

    async def stored(request: Request, workspace: str, workflow_id: str) -> Response:
        body = await _body(request, StoredRunBody)
        if body is None:
            return await engine_run(request)
        caller = await ctx.caller(request, body.api_key)  # resolving needs the caller (and refuses as the engine)
        definition, label = await ctx.stored_workflows.definition(caller, workspace, workflow_id,
                                                                   body.workflow_version_id or "")
        graph = light_graph(ctx.workflows, definition)
        if graph is None:
            return await engine_run(request)
        IN_GATEWAY.inc()
        return JSONResponse(jsonable_encoder(await run_definition(ctx, request, caller, graph, label, body)))

    for path, method in workflow_forward.PATHS:
        if path in RUN_PATHS:
            endpoint, summary = run, "Run a workflow definition (light runs here, the others by the engine)"
        elif path in STORED_PATHS:
            endpoint, summary = stored, "Run a stored workflow (light runs here, the others by the engine)"
        else:
            endpoint, summary = forward, "Served by the workflow engine"
        api.add_api_route(path, endpoint, methods=[method], summary=summary, include_in_schema=True)
    return api
