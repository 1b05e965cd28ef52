"""The OCR task's HTTP route: the Roboflow inference server's PP-OCR route, on the gateway core.

  POST /ocr/pp-ocr  {image: {type, value} | [...], pp_ocr_version_id?}
                    -> {result, image: {width, height}, predictions: [...], time, parent_id}

``result`` is the page's text (lines in reading order, joined with newlines); each prediction is a line: its
box, ``class`` (the line's text), ``confidence`` and ``points`` (its quadrilateral). A list of images answers
a list. ``pp_ocr_version_id`` names a fleet model (an id or alias); the reference's own stage names
("small-small", "tiny", ...) and none mean the alias ``pp-ocr``.
"""

from __future__ import annotations

import itertools

from fastapi import APIRouter, Request
from pydantic import Field

from fleet.v1 import inference_pb2
from services.common.errors import InvalidImage
from services.gateway.http import images
from services.gateway.http.context import HttpContext
from services.gateway.http.roboflow import ImageReference, _Lenient
from services.gateway.http.roboflow_json import inference_json
from services.tasks.http.core_models import task_model
from services.tasks.ocr import NAME

DEFAULT_MODEL = "pp-ocr"
_STAGES = ("none", "tiny", "small", "medium")
REFERENCE_VERSIONS = frozenset([*_STAGES, *("-".join(p) for p in itertools.product(_STAGES, repeat=2))])


class OcrBody(_Lenient):
    api_key: str | None = Field(None, description="API key (or send 'Authorization: Bearer <key>').")
    pp_ocr_version_id: str | None = Field(None, description="The fleet model (id or alias); default: 'pp-ocr'.")
    image: ImageReference | list[ImageReference] = Field(description="One image, or a list (answered as a list).")


def router(ctx: HttpContext) -> APIRouter:
    api = APIRouter(tags=["Roboflow-compatible: OCR"])

    @api.post("/ocr/pp-ocr", summary="Text lines read from images (PP-OCR)")
    async def pp_ocr(request: Request, body: OcrBody) -> object:
        caller = await ctx.caller(request, body.api_key)
        model = await task_model(ctx.gateway, caller, body.pp_ocr_version_id, DEFAULT_MODEL, NAME, REFERENCE_VERSIONS)
        refs = body.image if isinstance(body.image, list) else [body.image]
        if not refs:
            raise InvalidImage("the request carries no image: set image {type, value}")
        sources = [images.reference_image(r.type, r.value, ctx.max_image_bytes) for r in refs]
        answers = await ctx.gateway.infer_images(caller, model, sources, inference_pb2.InferenceParameters(),
                                                 ctx.timeout_s(request))
        out = [{**inference_json(a), "parent_id": None} for a in answers]
        return out if isinstance(body.image, list) else out[0]

    return api
