"""KServe v2 (Open Inference Protocol) REST routes, plus Triton's repository extension, on the OIP data plane.

JSON tensors: ``data`` is the flattened (or nested) element list; BYTES elements are strings:
base64 for binary (the image input), UTF-8 text for names and for a task's text input (``Task.oip_text_input``). A fleet model ``project/version``
is ``/v2/models/project/versions/version``; an alias is ``/v2/models/<alias>``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.common.context import current_request_id
from services.common.errors import InvalidArgument
from services.gateway.http.context import HttpContext
from services.gateway.http.images import check_size
from services.gateway.oip.dataplane import EXTENSIONS, InferResult, ModelMetadata
from services.gateway.oip.tensors import INPUT_NAME, NUMPY_TYPES, Tensor, TensorSpec


class TensorIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]
    parameters: dict[str, Any] = Field(default_factory=dict)


class OutputRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str


class InferBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    inputs: list[TensorIn]
    outputs: list[OutputRequest] = Field(default_factory=list)


class IndexBody(BaseModel):
    ready: bool = False


def _flatten(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    stack = [iter(values)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return out


def tensor_from_json(t: TensorIn, max_bytes: int) -> Tensor:
    data = _flatten(t.data)
    if t.datatype == "BYTES":
        items = []
        for item in data:
            if not isinstance(item, str):
                raise InvalidArgument(f"BYTES input {t.name!r} holds a {type(item).__name__}; send base64 strings")
            if t.name != INPUT_NAME:  # a text input: the strings themselves
                items.append(item.encode("utf-8"))
                check_size(len(items[-1]), max_bytes)
                continue
            try:
                items.append(base64.b64decode(item, validate=True))
            except (binascii.Error, ValueError):
                raise InvalidArgument(f"BYTES input {t.name!r} is not base64 text") from None
            check_size(len(items[-1]), max_bytes)
        return Tensor(t.name, t.datatype, t.shape, items)
    dtype = NUMPY_TYPES.get(t.datatype)
    if dtype is None:
        raise InvalidArgument(f"input datatype {t.datatype!r} is not supported here; send BYTES or UINT8")
    try:
        array = np.asarray(data, dtype=np.int64 if t.datatype == "UINT8" else dtype)
    except (TypeError, ValueError):
        raise InvalidArgument(f"input {t.name!r} holds values that are not {t.datatype}") from None
    if t.datatype == "UINT8" and array.size and (array.min() < 0 or array.max() > 255):
        raise InvalidArgument("UINT8 input values must lie between 0 and 255")
    return Tensor(t.name, t.datatype, t.shape, array.astype(dtype))


def tensor_json(t: Tensor) -> dict[str, Any]:
    if t.datatype == "BYTES":
        data: list[Any] = [x.decode() if t.text else base64.b64encode(x).decode("ascii") for x in t.data]  # type: ignore[union-attr]
    else:
        data = np.asarray(t.data).reshape(-1).tolist()
    return {"name": t.name, "datatype": t.datatype, "shape": t.shape, "data": data}


def _spec_json(spec: TensorSpec, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": spec.name, "datatype": spec.datatype, "shape": list(spec.shape)}
    if parameters:
        out["parameters"] = parameters
    return out


def metadata_json(meta: ModelMetadata) -> dict[str, Any]:
    return {"name": meta.name, "versions": meta.versions, "platform": meta.platform,
            "inputs": [_spec_json(s, meta.input_parameters) for s in meta.inputs],
            "outputs": [_spec_json(s) for s in meta.outputs], "parameters": meta.parameters}


def result_json(result: InferResult) -> dict[str, Any]:
    return {"model_name": result.model_name, "model_version": result.model_version, "id": result.id,
            "parameters": result.parameters, "outputs": [tensor_json(t) for t in result.outputs]}


def router(ctx: HttpContext) -> APIRouter:
    api = APIRouter(prefix="/v2", tags=["KServe v2 (Open Inference Protocol)"])
    plane = ctx.plane

    @api.get("", summary="Server metadata")
    async def server_metadata() -> dict:
        return {"name": plane.server_name, "version": plane.server_version, "extensions": list(EXTENSIONS)}

    @api.get("/health/live", summary="Live: the gateway process is up")
    async def live() -> dict:
        return {"live": plane.live()}

    @api.get("/health/ready", summary="Ready: some model worker is reachable (503 otherwise)")
    async def ready() -> JSONResponse:
        ok = plane.ready()
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    async def metadata(request: Request, name: str, version: str) -> dict:
        return metadata_json(await plane.model_metadata(await ctx.caller(request), name, version))

    async def model_ready(request: Request, name: str, version: str) -> JSONResponse:
        ok = await plane.model_ready(await ctx.caller(request), name, version)
        return JSONResponse({"name": name, "ready": ok}, status_code=200 if ok else 503)

    async def infer(request: Request, name: str, version: str, body: InferBody) -> dict:
        caller = await ctx.caller(request)
        inputs = [tensor_from_json(t, ctx.max_image_bytes) for t in body.inputs]
        parameters = {**{k: v for t in body.inputs for k, v in t.parameters.items()}, **body.parameters}
        result = await plane.infer(caller, name, version, body.id or current_request_id(), inputs, parameters,
                                   [o.name for o in body.outputs], ctx.timeout_s(request))
        return result_json(result)

    @api.get("/models/{name}", summary="Model metadata (inputs, outputs, task, classes in parameters)")
    async def model_metadata(request: Request, name: str) -> dict:
        return await metadata(request, name, "")

    @api.get("/models/{name}/versions/{version}", summary="Model metadata of one version")
    async def version_metadata(request: Request, name: str, version: str) -> dict:
        return await metadata(request, name, version)

    @api.get("/models/{name}/ready", summary="Ready: some worker holds the model loaded (503 otherwise)")
    async def model_is_ready(request: Request, name: str) -> JSONResponse:
        return await model_ready(request, name, "")

    @api.get("/models/{name}/versions/{version}/ready", summary="Ready, for one version")
    async def version_is_ready(request: Request, name: str, version: str) -> JSONResponse:
        return await model_ready(request, name, version)

    @api.post("/models/{name}/infer", summary="Inference (tensors in, tensors out)")
    async def model_infer(request: Request, name: str, body: InferBody) -> dict:
        return await infer(request, name, "", body)

    @api.post("/models/{name}/versions/{version}/infer", summary="Inference on one version")
    async def version_infer(request: Request, name: str, version: str, body: InferBody) -> dict:
        return await infer(request, name, version, body)

    @api.post("/repository/index", summary="Registered models and whether each is loaded")
    async def repository_index(request: Request, body: IndexBody | None = None) -> list:
        entries = await plane.index(await ctx.caller(request), bool(body and body.ready))
        return [{"name": e.name, "version": e.version, "state": e.state, **({"reason": e.reason} if e.reason else {})}
                for e in entries]

    @api.post("/repository/models/{name:path}/load", summary="Load a model onto the fleet")
    async def repository_load(request: Request, name: str) -> dict:
        await plane.load(await ctx.caller(request), name)
        return {}

    @api.post("/repository/models/{name:path}/unload", summary="Unload a model from every worker")
    async def repository_unload(request: Request, name: str) -> dict:
        await plane.unload(await ctx.caller(request), name)
        return {}

    return api
