"""The reference stream manager's HTTP routes (/inference_pipelines/...) with its request and response
shapes, so inference-sdk's pipeline methods work unchanged. Errors map once (services.gateway.http.errors).

The key comes from ``Authorization: Bearer``, else ``api_key`` in the query or the JSON body (the SDK sends
it in the body, on GET too). ``video_reference`` may be one reference or a list (source ids "0", "1", ...).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common.errors import FleetError, InvalidArgument
from services.gateway.auth import bearer_token
from services.gateway.http import errors
from services.pipelines.access import Access
from services.pipelines.manager import PipelineManager
from services.pipelines.processors import MAX_PARAMETERS_BYTES, stored_workflow_target, workflow_target
from services.pipelines.requests import NewPipeline, Requester
from services.pipelines.spec import Desired, SourceSpec, Target


async def _body(request: Request) -> dict:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidArgument("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidArgument("the request body must be a JSON object")
    return body


def _answer(request_id: str, pipeline_id: str | None = None, **fields: object) -> dict:
    return {"status": "success", "context": {"request_id": request_id, "pipeline_id": pipeline_id}, **fields}


def new_pipeline(body: dict) -> NewPipeline:
    video = body.get("video_configuration")
    processing = body.get("processing_configuration")
    if not isinstance(video, dict) or not isinstance(processing, dict):
        raise InvalidArgument("video_configuration and processing_configuration are required")
    references = video.get("video_reference")
    references = references if isinstance(references, list) else [references]
    if not all(isinstance(r, str) for r in references):
        raise InvalidArgument("video_reference must be a URL or path, or a list of them (camera indexes are "
                              "not available on a server)")
    properties = video.get("video_source_properties") or {}
    transport = str(properties.get("rtsp_transport", "tcp")) if isinstance(properties, dict) else "tcp"
    sources = [SourceSpec(str(i), r, transport) for i, r in enumerate(references)]
    kind = processing.get("type")
    if kind == "WorkflowConfiguration":
        spec, image_input = processing.get("workflow_specification"), processing.get("image_input_name") or "image"
        named = processing.get("workspace_name") is not None or processing.get("workflow_id") is not None
        if (spec is not None) == named:
            raise InvalidArgument("send workflow_specification, or workspace_name and workflow_id (a stored "
                                  "workflow), not both")
        target = (workflow_target(spec, image_input) if spec is not None else stored_workflow_target(
            processing.get("workspace_name"), processing.get("workflow_id"), processing.get("workflow_version_id"),
            image_input))
        parameters = processing.get("workflows_parameters")
        if parameters is not None:
            text = json.dumps(parameters) if isinstance(parameters, dict) else ""
            if not text or len(text) > MAX_PARAMETERS_BYTES:
                raise InvalidArgument("workflows_parameters must be a JSON object of at most 64 KiB")
            target = replace(target, parameters=text)
    elif kind == "ModelConfiguration":  # this fleet's own: a model, no workflow
        confidence = processing.get("confidence")
        target = Target(model_id=str(processing.get("model_id") or ""),
                        confidence=float(confidence) if isinstance(confidence, (int, float)) else None)
    else:
        raise InvalidArgument("processing_configuration.type must be WorkflowConfiguration or ModelConfiguration")
    sink = body.get("sink_configuration") or {}
    size = sink.get("results_buffer_size") if isinstance(sink, dict) else None
    max_fps = video.get("max_fps")
    return NewPipeline(sources, target, float(max_fps) if isinstance(max_fps, (int, float)) else None,
                       int(size) if isinstance(size, int) else None)


def _frames_metadata(result: dict) -> dict:
    return {"frame_id": result["frame_id"], "source_id": result["source_id"],
            "frame_timestamp": datetime.fromtimestamp(result["captured_at"], UTC).isoformat()}


def _output(result: dict, excluded: list[str]) -> dict:
    if result["error"]:
        return {"error": result["error"]}
    return {k: v for k, v in result["outputs"].items() if k not in excluded}


def routes(manager: PipelineManager, access: Access) -> APIRouter:
    router = APIRouter(prefix="/inference_pipelines")

    async def caller(request: Request, body: dict) -> Requester:
        key = bearer_token(request.headers.get("authorization")) or request.query_params.get("api_key") \
            or body.get("api_key")
        return await access.requester(key if isinstance(key, str) else None)

    @router.post("/initialise")
    async def initialise(request: Request) -> dict:
        body = await _body(request)
        who = await caller(request, body)
        spec = await manager.initialise(who, new_pipeline(body))
        return _answer(uuid.uuid4().hex, spec.pipeline_id)

    @router.get("/list")
    async def list_pipelines(request: Request) -> dict:
        who = await caller(request, await _body(request))
        return _answer(uuid.uuid4().hex, None, pipelines=await manager.list(who))

    @router.get("/{pipeline_id}/status")
    async def status(pipeline_id: str, request: Request) -> dict:
        who = await caller(request, await _body(request))
        return _answer(uuid.uuid4().hex, pipeline_id, report=await manager.status(who, pipeline_id))

    async def control(pipeline_id: str, request: Request, desired: Desired) -> dict:
        who = await caller(request, await _body(request))
        await manager.set_desired(who, pipeline_id, desired)
        return _answer(uuid.uuid4().hex, pipeline_id)

    @router.post("/{pipeline_id}/pause")
    async def pause(pipeline_id: str, request: Request) -> dict:
        return await control(pipeline_id, request, Desired.PAUSED)

    @router.post("/{pipeline_id}/resume")
    async def resume(pipeline_id: str, request: Request) -> dict:
        return await control(pipeline_id, request, Desired.RUNNING)

    @router.post("/{pipeline_id}/terminate")
    async def terminate(pipeline_id: str, request: Request) -> dict:
        who = await caller(request, await _body(request))
        await manager.terminate(who, pipeline_id)
        return _answer(uuid.uuid4().hex, pipeline_id)

    @router.get("/{pipeline_id}/consume")
    async def consume(pipeline_id: str, request: Request) -> dict:
        body = await _body(request)
        who = await caller(request, body)
        excluded = [str(f) for f in body.get("excluded_fields") or []]
        results = await manager.consume(who, pipeline_id, int(body.get("count", 1) or 1))
        return _answer(uuid.uuid4().hex, pipeline_id, outputs=[_output(r, excluded) for r in results],
                       frames_metadata=[_frames_metadata(r) for r in results])

    return router


def build_app(manager: PipelineManager, access: Access) -> FastAPI:
    app = FastAPI(title="fleet pipelines", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(routes(manager, access))
    app.add_exception_handler(FleetError, errors.fleet_error)
    app.add_exception_handler(RequestValidationError, errors.validation_error)
    app.add_exception_handler(StarletteHTTPException, errors.http_error)
    app.add_exception_handler(Exception, errors.unexpected_error)
    return app
