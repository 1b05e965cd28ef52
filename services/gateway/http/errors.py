"""The fleet's errors as HTTP statuses and JSON bodies (mapped here once, for every HTTP route).

Statuses follow the usual gRPC -> HTTP mapping (as grpc-gateway and Google APIs use it); the
message is the one the gRPC API answers with. Roboflow-style routes answer ``{"message": ...}``,
KServe v2 routes ``{"error": ...}``; both carry ``status`` (the gRPC code name) and ``request_id``.
"""

from __future__ import annotations

import logging

import grpc
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common.context import current_request_id
from services.common.errors import FleetError, ResourceExhausted
from services.common.messages import bounded
from services.common.redact import redact_urls

log = logging.getLogger("fleet.gateway.http")
ERROR_MESSAGE = "fleet.error_message"  # the scope key under which an answered error's message is kept
REQUEST_ID_SCOPE = "fleet.request_id"  # the scope key under which the edge keeps the call's request id

STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


class RequestTooLarge(ResourceExhausted):
    """A request body (or the image in it) over the size limit: HTTP 413."""


def http_status(exc: FleetError) -> int:
    if isinstance(exc, RequestTooLarge):
        return 413
    return STATUS.get(exc.code, 500)


def request_id_of(request: Request) -> str:
    """The call's request id: Starlette runs the unexpected-error handler outside the edge middleware,
    after the middleware has reset the context variable, so the id travels in the scope too."""
    return request.scope.get(REQUEST_ID_SCOPE) or current_request_id()


def error_response(request: Request, status: int, code: str, message: str) -> JSONResponse:
    message = bounded(redact_urls(message))  # Starlette's and validation messages too, not only FleetError's
    request.scope[ERROR_MESSAGE] = message  # for the edge's failure log line
    key = "error" if request.url.path.startswith("/v2") else "message"
    return JSONResponse({key: message, "status": code, "request_id": request_id_of(request)},
                        status_code=status)


async def fleet_error(request: Request, exc: FleetError) -> JSONResponse:
    return error_response(request, http_status(exc), exc.code.name, exc.message)


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors())
    return error_response(request, 400, "INVALID_ARGUMENT", f"invalid request: {problems}")


_CODE_OF_STATUS = {v: k.name for k, v in reversed(list(STATUS.items()))}


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's own answers (no such route, wrong method, unparsable body) in the same shape."""
    detail = exc.detail if isinstance(exc.detail, str) else "bad request"
    if exc.status_code == 404:
        detail = f"no route {request.method} {request.url.path}; see /docs"
    return error_response(request, exc.status_code, _CODE_OF_STATUS.get(exc.status_code, "UNKNOWN"), detail)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error in %s", request.url.path, exc_info=exc)
    return error_response(request, 500, "INTERNAL", f"internal error; quote request id {request_id_of(request)}")
