"""The embedding task's HTTP routes: the Roboflow inference server's CLIP routes, on the gateway's embedding use cases
(``services.gateway.embeddings``).

  POST /clip/embed_image   {image: {type, value} | [...], clip_version_id?}  -> {embeddings: [[...]], time}
  POST /clip/embed_text    {text: str | [str], clip_version_id?}             -> {embeddings: [[...]], time}
  POST /clip/compare       {subject, subject_type, prompt, prompt_type}      -> {similarity: [...] | {name: ...}, time}

``clip_version_id`` names a fleet model (an id or alias); by default the alias ``clip``.
"""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import Field

from fleet.v1 import inference_pb2
from services.common.errors import InvalidArgument
from services.gateway.embeddings import Embeddings, Subject
from services.gateway.http import images
from services.gateway.http.context import HttpContext
from services.gateway.http.roboflow import ImageReference, _Lenient

DEFAULT_MODEL = "clip"
Kind = Literal["image", "text"]


class ClipRequest(_Lenient):
    api_key: str | None = Field(None, description="API key (or send 'Authorization: Bearer <key>').")
    clip_version_id: str | None = Field(None, description="The fleet model (id or alias); default: the alias 'clip'.")


class EmbedImageBody(ClipRequest):
    image: ImageReference | list[ImageReference]


class EmbedTextBody(ClipRequest):
    text: str | list[str]


class CompareBody(ClipRequest):
    subject: ImageReference | str
    subject_type: Kind = "image"
    prompt: ImageReference | list[ImageReference] | str | list[str] | dict[str, ImageReference | str]
    prompt_type: Kind = "text"


def router(ctx: HttpContext) -> APIRouter:
    api = APIRouter(tags=["Roboflow-compatible: CLIP"])
    use = Embeddings(ctx.gateway)

    def image(ref: object) -> inference_pb2.Image:
        if not isinstance(ref, ImageReference):
            raise InvalidArgument("an image is expected here: {type: 'base64' | 'url', value}")
        return images.reference_image(ref.type, ref.value, ctx.max_image_bytes)

    def item(value: object, kind: Kind) -> Subject:
        if kind == "image":
            return image(value)
        if not isinstance(value, str):
            raise InvalidArgument("a text is expected here (subject_type / prompt_type 'text')")
        return value

    @api.post("/clip/embed_image", summary="Embeddings of images")
    async def embed_image(request: Request, body: EmbedImageBody) -> dict:
        caller = await ctx.caller(request, body.api_key)
        model = await use.model(caller, body.clip_version_id or DEFAULT_MODEL)
        refs = body.image if isinstance(body.image, list) else [body.image]
        done = await use.images(caller, model, [image(r) for r in refs], ctx.timeout_s(request))
        return {"inference_id": uuid.uuid4().hex, "frame_id": None, "time": done.gateway_ms / 1e3,
                "embeddings": done.vectors}

    @api.post("/clip/embed_text", summary="Embeddings of texts")
    async def embed_text(request: Request, body: EmbedTextBody) -> dict:
        caller = await ctx.caller(request, body.api_key)
        model = await use.model(caller, body.clip_version_id or DEFAULT_MODEL)
        texts = body.text if isinstance(body.text, list) else [body.text]
        done = await use.texts(caller, model, texts, ctx.timeout_s(request))
        return {"inference_id": uuid.uuid4().hex, "frame_id": None, "time": done.gateway_ms / 1e3,
                "embeddings": done.vectors, "truncated": done.truncated}

    @api.post("/clip/compare", summary="Cosine similarity of a subject with prompts")
    async def compare(request: Request, body: CompareBody) -> dict:
        caller = await ctx.caller(request, body.api_key)
        model = await use.model(caller, body.clip_version_id or DEFAULT_MODEL)
        named = isinstance(body.prompt, dict)
        values = list(body.prompt.values()) if named else body.prompt if isinstance(body.prompt, list) else [body.prompt]
        similarity, gateway_ms = await use.compare(caller, model, item(body.subject, body.subject_type),
                                                   [item(v, body.prompt_type) for v in values], ctx.timeout_s(request))
        answer: object = dict(zip(body.prompt, similarity)) if named else similarity
        return {"inference_id": uuid.uuid4().hex, "frame_id": None, "parent_id": None, "time": gateway_ms / 1e3,
                "similarity": answer}

    return api
