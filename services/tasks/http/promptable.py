"""The promptable-segmentation task's HTTP routes: the Roboflow inference server's SAM2 routes, on the gateway core.

  POST /sam2/segment_image  {image, prompts: {prompts: [{box?, points?}]}, format?, multimask_output?,
                             sam2_version_id?}  -> {predictions: [{masks, confidence, format}], time}
  POST /sam2/embed_image    {image, sam2_version_id?}  -> {image_id, time}

Each prompt is one core call (concurrently): the first computes the image's embedding on the worker that
affinity routing picks for the image, the others find it in that worker's cache. Each prompt answers its most
confident mask, as the reference server does whatever ``multimask_output`` says. ``format`` "json" (or
"polygon"): the mask's outlines, ``[[[x, y], ...], ...]``; "rle": ``{"size": [h, w], "counts": [...]}``,
COCO's uncompressed RLE. ``embed_image`` runs the encoder once (a point prompt at the image's corner, its
mask discarded) so later prompts on the image skip it; ``image_id`` is the image's content hash.
``sam2_version_id`` names a fleet model (an id or alias); the reference's own names (``hiera_tiny``, ...)
and none mean the alias ``sam2``.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from fleet.v1 import inference_pb2
from services.common.errors import InvalidArgument
from services.gateway.http import images
from services.gateway.http.context import HttpContext
from services.gateway.http.roboflow import ImageReference, _Lenient
from services.tasks.http.core_models import task_model
from services.tasks.promptable import BOXES, NAME, POINTS

DEFAULT_MODEL = "sam2"
REFERENCE_VERSIONS = ("hiera_tiny", "hiera_small", "hiera_large", "hiera_b_plus")
#: The most prompts one /sam2/segment_image request may carry (each is one decoder run).
MAX_PROMPTS = 32
FORMATS = {"json": inference_pb2.MASK_FORMAT_POLYGONS, "polygon": inference_pb2.MASK_FORMAT_POLYGONS,
           "rle": inference_pb2.MASK_FORMAT_RLE}


class Box(BaseModel):
    x: float = Field(description="Centre x, original-image pixels.")
    y: float = Field(description="Centre y.")
    width: float
    height: float


class Point(BaseModel):
    x: float
    y: float
    positive: bool = Field(description="Inside the wanted object (true) or background (false).")


class Prompt(BaseModel):
    box: Box | None = None
    points: list[Point] | None = None


class PromptSet(BaseModel):
    prompts: list[Prompt] | None = None


class Sam2Request(_Lenient):
    api_key: str | None = Field(None, description="API key (or send 'Authorization: Bearer <key>').")
    sam2_version_id: str | None = Field(None, description="The fleet model (id or alias); default: the alias 'sam2'.")
    image: ImageReference


class SegmentBody(Sam2Request):
    prompts: PromptSet = Field(default_factory=PromptSet, description=f"At most {MAX_PROMPTS} prompts.")
    format: str = Field("json", description="'json' / 'polygon' (outlines) or 'rle'.")
    multimask_output: bool = Field(True, description="Accepted; each prompt answers its most confident mask.")
    mask_input: object | None = Field(None, description="Not taken here (fleet.v1's input 'mask' takes it).")


def prompt_inputs(prompt: Prompt) -> dict[str, inference_pb2.InputValue]:
    """One prompt as the model's typed inputs (``points``, ``boxes``)."""
    inputs = {}
    if prompt.points:
        inputs[POINTS] = inference_pb2.InputValue(points=inference_pb2.PointPrompts(points=[
            inference_pb2.PointPrompt(x=p.x, y=p.y, negative=not p.positive) for p in prompt.points]))
    if prompt.box is not None:
        b = prompt.box
        inputs[BOXES] = inference_pb2.InputValue(boxes=inference_pb2.BoxPrompts(boxes=[
            inference_pb2.BoxPrompt(x=b.x, y=b.y, width=b.width, height=b.height)]))
    if not inputs:
        raise InvalidArgument("each prompt needs a box or points")
    return inputs


def prediction(response: inference_pb2.InferResponse, mask_format: str) -> dict:
    """A prompt's most confident mask in the reference's shape."""
    masks = [m for p in response.promptable_segmentation.prompts for m in p.masks]
    if not masks:
        return {"masks": [] if mask_format != "rle" else {"size": [response.image_height, response.image_width],
                                                          "counts": [response.image_height * response.image_width]},
                "confidence": 0.0, "format": "rle" if mask_format == "rle" else "polygon"}
    best = masks[0]
    if mask_format == "rle":
        return {"masks": {"size": [best.rle.height, best.rle.width], "counts": list(best.rle.counts)},
                "confidence": best.detection.confidence, "format": "rle"}
    outlines = [part.points for part in best.parts if not part.hole] or [best.points]
    return {"masks": [[[round(p.x), round(p.y)] for p in outline] for outline in outlines],
            "confidence": best.detection.confidence, "format": "polygon"}


def router(ctx: HttpContext) -> APIRouter:
    api = APIRouter(tags=["Roboflow-compatible: SAM2"])

    async def model(request: Request, body: Sam2Request):  # type: ignore[no-untyped-def]  # noqa: ANN202
        caller = await ctx.caller(request, body.api_key)
        found = await task_model(ctx.gateway, caller, body.sam2_version_id, DEFAULT_MODEL, NAME, REFERENCE_VERSIONS)
        return caller, found, images.reference_image(body.image.type, body.image.value, ctx.max_image_bytes)

    @api.post("/sam2/segment_image", summary="Masks for box and point prompts")
    async def segment_image(request: Request, body: SegmentBody) -> dict:
        mask_format = body.format.lower()
        if mask_format not in FORMATS:
            raise InvalidArgument(f"format {body.format!r} is not offered: use 'json', 'polygon' or 'rle'")
        if body.mask_input is not None:
            raise InvalidArgument("mask_input is not taken on /sam2/segment_image; fleet.v1's input 'mask' takes "
                                  "the previous mask logits")
        prompts = body.prompts.prompts or []
        if not prompts:
            raise InvalidArgument("prompts is empty: send at least one prompt {box?, points?}")
        if len(prompts) > MAX_PROMPTS:
            raise InvalidArgument(f"{len(prompts)} prompts; at most {MAX_PROMPTS} in one request (split it)")
        inputs = [prompt_inputs(p) for p in prompts]
        caller, found, image = await model(request, body)
        params = inference_pb2.InferenceParameters(mask_format=FORMATS[mask_format])
        timeout = ctx.timeout_s(request)
        answers = await asyncio.gather(*(ctx.gateway.infer(caller, inference_pb2.InferRequest(
            model_id=found.model_id, image=image, parameters=params, inputs=i), timeout, found) for i in inputs))
        return {"predictions": [prediction(a, mask_format) for a in answers],
                "time": max(a.timings.gateway_ms for a in answers) / 1e3}

    @api.post("/sam2/embed_image", summary="Compute and cache an image's embedding")
    async def embed_image(request: Request, body: Sam2Request) -> dict:
        caller, found, image = await model(request, body)
        corner = {POINTS: inference_pb2.InputValue(points=inference_pb2.PointPrompts(
            points=[inference_pb2.PointPrompt(x=0, y=0)]))}
        answer = await ctx.gateway.infer(caller, inference_pb2.InferRequest(
            model_id=found.model_id, image=image, inputs=corner, bypass_cache=True), ctx.timeout_s(request), found)
        return {"image_id": answer.promptable_segmentation.image_hash, "time": answer.timings.gateway_ms / 1e3}

    return api
