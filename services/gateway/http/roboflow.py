"""The Roboflow inference server's HTTP routes, on the fleet's core.

  POST /infer/<task route>                 (one per registered task with a ``Task.route``, plug-ins' included)
  POST /{project}/{version}?api_key=...    (legacy: base64 body, multipart 'file', or ?image=<url>)
  POST /model/add, /model/remove, /model/clear; GET /model/registry; GET /info

Unset parameters take the model's defaults, as on gRPC. Roboflow fields the fleet has no use for
(active learning, preprocessing switches, source tags, ...) are accepted and ignored.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from fleet.v1 import inference_pb2
from services.common.errors import InvalidArgument, InvalidImage
from services.gateway.caller import Caller
from services.gateway.http import images
from services.gateway.http.context import HttpContext
from services.gateway.http.roboflow_json import inference_json, model_json
from services.gateway.params import inference_parameters
from services.tasks import registry as tasks
from services.tasks.base import Task

Confidence = float | Literal["best", "default"] | None


class ImageReference(BaseModel):
    type: str = Field("base64", description="'base64' (the encoded file in base64) or 'url' (http/https).")
    value: str = Field(description="The base64 text (a data: URI is fine) or the URL.")


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class InferRequestBody(_Lenient):
    model_id: str = Field(description="Model id ('shapes-det/1') or alias.")
    api_key: str | None = Field(None, description="API key (or send 'Authorization: Bearer <key>').")
    image: ImageReference | list[ImageReference] = Field(description="One image, or a list (answered as a list).")
    confidence: Confidence = Field(None, description="Minimum score, 0..1 ('best' / 'default': the model's).")
    iou_threshold: float | None = Field(None, description="NMS IoU threshold, 0..1.")
    class_filter: list[str] | None = Field(None, description="Only these class names.")
    class_agnostic_nms: bool | None = None
    max_detections: int | None = Field(None, description="At most this many results (1..10000).")
    max_candidates: int | None = Field(None, description="Candidates kept before NMS.")
    visualize_predictions: bool = Field(False, description="Add a base64 JPEG 'visualization' to the answer.")


class ModelRequestBody(_Lenient):
    model_id: str
    api_key: str | None = None


def _confidence(value: object) -> object:
    if value in ("best", "default"):
        return None  # the model's own threshold
    return value


def _parameters(body: InferRequestBody) -> inference_pb2.InferenceParameters:
    return inference_parameters(
        confidence=_confidence(body.confidence), iou_threshold=body.iou_threshold, class_filter=body.class_filter,
        class_agnostic_nms=body.class_agnostic_nms, max_detections=body.max_detections,
        max_candidates=body.max_candidates, visualize=body.visualize_predictions,
    )


def router(ctx: HttpContext) -> APIRouter:
    api = APIRouter(tags=["Roboflow-compatible"])

    async def infer_task(request: Request, body: InferRequestBody, task: Task) -> object:
        caller = await ctx.caller(request, body.api_key)
        model = await ctx.gateway.model(caller, body.model_id)
        actual = tasks.of_model(model)
        if actual is not task:
            raise InvalidArgument(f"model {model.model_id!r} is not a {task.route} model"
                                  + (f"; use POST /infer/{actual.route}" if actual.route else ""))
        refs = body.image if isinstance(body.image, list) else [body.image]
        if not refs:
            raise InvalidImage("the request carries no image: set image {type, value}")
        sources = [images.reference_image(r.type, r.value, ctx.max_image_bytes) for r in refs]
        answers = await ctx.gateway.infer_images(caller, model, sources, _parameters(body), ctx.timeout_s(request))
        out = [inference_json(a) for a in answers]
        return out if isinstance(body.image, list) else out[0]

    for task in tasks.all_tasks():  # one route per task that has one (plug-ins included)
        if task.route:
            api.add_api_route(f"/infer/{task.route}", _route(infer_task, task), methods=["POST"],
                              summary=f"{task.name} ({task.summary})", name=f"infer_{task.route}")

    async def registry(caller: Caller, also: tuple[str, str] | None = None) -> dict:
        """Models loaded across the fleet, as /model/registry lists them (``also``: a requested alias)."""
        models = [model_json(model_id, model) for model_id, model in (await ctx.gateway.loaded_models(caller)).items()]
        if also is not None and all(m["model_id"] != also[0] for m in models):
            requested, canonical = also
            models += [{**m, "model_id": requested} for m in models if m["model_id"] == canonical]
        return {"models": models}

    @api.get("/model/registry", summary="Models loaded across the fleet")
    async def model_registry(request: Request) -> dict:
        return await registry(await ctx.caller(request))

    @api.post("/model/add", summary="Load a model onto the fleet")
    async def model_add(request: Request, body: ModelRequestBody) -> dict:
        caller = await ctx.caller(request, body.api_key)
        model, _ = await ctx.gateway.add_model(caller, body.model_id)
        return await registry(caller, (body.model_id, model.model_id))

    @api.post("/model/remove", summary="Unload a model from every worker")
    async def model_remove(request: Request, body: ModelRequestBody) -> dict:
        caller = await ctx.caller(request, body.api_key)
        await ctx.gateway.remove_model(caller, body.model_id)
        return await registry(caller)

    @api.post("/model/clear", summary="Unload every model of the caller's workspace")
    async def model_clear(request: Request) -> dict:
        caller = await ctx.caller(request)
        await ctx.gateway.clear_models(caller)
        return await registry(caller)

    @api.get("/info", summary="Server name, version and instance id")
    async def info() -> dict:
        return {"name": "inference-fleet", "version": ctx.version, "uuid": ctx.instance_id}

    return api


def _route(infer_task, task: Task):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
    """The handler of ``/infer/<task.route>`` (its own function, so FastAPI reads its body's schema)."""

    async def infer(request: Request, body: InferRequestBody) -> object:
        return await infer_task(request, body, task)

    return infer


def legacy_router(ctx: HttpContext) -> APIRouter:
    """The catch-all ``/{project}/{version}`` route: include it after every other router."""
    api = APIRouter(tags=["Roboflow-compatible (legacy)"])

    @api.post("/{dataset_id}/{version_id}", summary="Legacy inference: POST /{project}/{version}?api_key=...")
    async def legacy_infer(
        request: Request, dataset_id: str, version_id: str,
        api_key: str | None = Query(None, description="API key (or send 'Authorization: Bearer <key>')."),
        confidence: float | None = Query(None, description="Minimum score: 0..1, or a percentage (1..100)."),
        overlap: float | None = Query(None, description="NMS IoU threshold: 0..1, or a percentage (1..100)."),
        max_detections: int | None = Query(None, description="At most this many results."),
        class_filter: str | None = Query(None, description="Comma-separated class names."),
        format: Literal["json", "image", "image_and_json"] = Query(  # noqa: A002 - Roboflow's name
            "json", description="'image' answers the annotated JPEG; 'image_and_json' adds it to the JSON."),
        image: str | None = Query(None, description="An http(s) URL to run on instead of the body."),
        image_type: str = Query("base64", description="Body encoding: 'base64' (raw image bytes are accepted too)."),
    ) -> object:
        caller = await ctx.caller(request)
        if confidence is not None and confidence >= 1:
            confidence /= 100
        if overlap is not None and overlap >= 1:
            overlap /= 100
        params = inference_parameters(confidence=confidence, iou_threshold=overlap, max_detections=max_detections,
                                      class_filter=class_filter, visualize=format != "json")
        source = await _legacy_image(request, image, image_type, ctx.max_image_bytes)
        answer = await ctx.gateway.infer(caller, inference_pb2.InferRequest(
            model_id=f"{dataset_id}/{version_id}", image=source, parameters=params), ctx.timeout_s(request))
        if format == "image":
            return Response(content=answer.visualization, media_type="image/jpeg")
        return inference_json(answer)

    return api


async def _legacy_image(request: Request, url: str | None, image_type: str, max_bytes: int) -> inference_pb2.Image:
    if url:
        return images.reference_image("url", url, max_bytes)
    if image_type.lower() not in ("base64", "raw"):
        raise InvalidImage(f"image_type {image_type!r} is not accepted: send 'base64'")
    if "multipart/form-data" in request.headers.get("content-type", ""):
        form = await request.form()
        part = form.get("file")
        if part is None or isinstance(part, str):
            raise InvalidImage("the multipart body has no file part named 'file'")
        data = await part.read()
        images.check_size(len(data), max_bytes)
        return inference_pb2.Image(encoded=data)
    return images.body_image(await request.body(), max_bytes)
