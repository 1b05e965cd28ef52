"""Workflow routes, in the reference server's shapes (what inference-sdk's ``run_workflow`` calls):

  POST /workflows/run, /infer/workflows                  a definition in the body ("specification")
  POST /{workspace}/workflows/{workflow_id},
       /infer/workflows/{workspace}/{workflow_id}        a stored workflow (current version or workflow_version_id)
  POST /workflows/validate                               the definition as the body -> {"status": "ok"}
  POST /workflows/blocks/describe                        the supported blocks, their parameters and outputs
  GET  /workflows/definition/schema                      the definition's JSON Schema

Answers: ``{"outputs": [one object per input image], "profiler_trace": []}``; images in outputs as
``{"type": "base64", "value": ...}``. Include this router before the legacy ``/{project}/{version}`` one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from fleet.v1 import inference_pb2
from services.common.errors import InvalidImage
from services.gateway.caller import Caller
from services.gateway.http import images
from services.gateway.http.context import HttpContext
from services.gateway.workflows import run_workflow
from services.workflows import kinds
from services.workflows.blocks import describe
from services.workflows.schema import definition_schema


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class RunBody(_Lenient):
    api_key: str | None = Field(None, description="API key (or send 'Authorization: Bearer <key>').")
    inputs: dict[str, Any] = Field(default_factory=dict, description="Images ({type: base64, value}, or a list of "
                                   "them) and parameters, by the definition's input names.")
    excluded_fields: list[str] | None = Field(None, description="Outputs to leave out of the answer.")
    enable_profiling: bool = Field(False, description="Accepted; the fleet answers an empty profiler_trace.")
    use_cache: bool = Field(True, description="Accepted (stored definitions are always cached by the gateway).")


class SpecRunBody(RunBody):
    specification: dict[str, Any] = Field(description="The workflow definition (version, inputs, steps, outputs).")
    workflow_id: str | None = Field(None, description="Accepted for the reference server's compatibility.")


class StoredRunBody(RunBody):
    workflow_version_id: str | None = Field(None, description="A version of the stored workflow (default: current).")


def image_reader(ctx: HttpContext) -> Callable[[Any], inference_pb2.Image]:
    def image_of(value: Any) -> inference_pb2.Image:
        if isinstance(value, dict) and "value" in value:
            return images.reference_image(str(value.get("type", "base64")), str(value["value"]), ctx.max_image_bytes)
        if isinstance(value, str):
            return images.reference_image("base64", value, ctx.max_image_bytes)
        raise InvalidImage("an image input must be {type: base64, value: <base64 text>}")

    return image_of


async def run_definition(ctx: HttpContext, request: Request, caller: Caller, definition: Any, label: str,
                         body: RunBody) -> dict:
    """The answer of a run whose definition (or its compiled graph) and caller are known (the routes here, and a
    forwarding gateway's light runs: ``services.gateway.http.workflow_light``)."""
    outputs = await run_workflow(ctx.workflows, ctx.gateway, caller, definition, body.inputs, image_reader(ctx),
                                 ctx.timeout_s(request), body.excluded_fields, label)
    return {"outputs": outputs, "profiler_trace": []}


def router(ctx: HttpContext) -> APIRouter:
    api = APIRouter(tags=["Workflows"])

    async def run(request: Request, body: SpecRunBody) -> dict:
        caller = await ctx.caller(request, body.api_key)
        return await run_definition(ctx, request, caller, body.specification, "inline", body)

    api.add_api_route("/workflows/run", run, methods=["POST"], summary="Run a workflow definition sent in the body")
    api.add_api_route("/infer/workflows", run, methods=["POST"], summary="Run a workflow definition (legacy route)")

    async def stored(request: Request, workspace: str, workflow_id: str, body: StoredRunBody) -> dict:
        caller = await ctx.caller(request, body.api_key)
        definition, label = await ctx.stored_workflows.definition(caller, workspace, workflow_id,
                                                                   body.workflow_version_id or "")
        return await run_definition(ctx, request, caller, definition, label, body)

    api.add_api_route("/{workspace}/workflows/{workflow_id}", stored, methods=["POST"],
                      summary="Run a stored workflow")
    api.add_api_route("/infer/workflows/{workspace}/{workflow_id}", stored, methods=["POST"],
                      summary="Run a stored workflow (legacy route)")

    @api.post("/workflows/validate", summary="Validate a workflow definition (the body, or its 'specification')")
    async def validate(request: Request, body: dict[str, Any]) -> dict:
        await ctx.caller(request, body.get("api_key") if isinstance(body.get("api_key"), str) else None)
        definition = body["specification"] if isinstance(body.get("specification"), dict) else body
        ctx.workflows.validate({k: v for k, v in definition.items() if k != "api_key"})
        return {"status": "ok"}

    @api.post("/workflows/blocks/describe", summary="The supported blocks, their parameters and outputs")
    async def blocks_describe(request: Request) -> dict:
        await ctx.caller(request)
        return {"blocks": describe(), "declared_kinds": sorted({k for b in describe() for o in b["outputs"]
                                                                 for k in [o["kind"]] if not k.startswith("=")}
                                                                | {kinds.ANY})}

    @api.get("/workflows/definition/schema", summary="The workflow definition's JSON Schema")
    async def schema() -> dict:
        return {"schema": definition_schema()}

    return api
