"""One ASGI middleware around the HTTP app: request id, body-size limit, metrics, call logs."""

from __future__ import annotations

import logging
import time

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.context import REQUEST_ID_HEADER, request_id_from, request_id_var
from services.gateway.http.errors import ERROR_MESSAGE, REQUEST_ID_SCOPE, RequestTooLarge
from services.gateway.http.metrics import HTTP_DURATION, HTTP_REQUESTS

log = logging.getLogger("fleet.gateway.http")


def too_large(size: int, limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"request body larger than max ({size} vs. {limit} bytes)")


class EdgeMiddleware:
    """Reads the body first (refusing one over the limit with 413 before any route sees it)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes

    async def _read_body(self, receive: Receive, declared: str) -> tuple[bytes, RequestTooLarge | None]:
        limit = self.max_body_bytes
        if declared.isdigit() and int(declared) > limit:
            return b"", too_large(int(declared), limit)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return b"", too_large(size, limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks), None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        request_id = request_id_from(headers.items())
        scope[REQUEST_ID_SCOPE] = request_id  # for handlers that run outside this middleware (unexpected errors)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        body, too_big = await self._read_body(receive, headers.get("content-length", ""))
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # http.disconnect

        async def tagged_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REQUEST_ID_HEADER.encode(), request_id.encode())]
            await send(message)

        try:
            if too_big is not None:
                response = JSONResponse({"message": too_big.message, "error": too_big.message,
                                         "status": too_big.code.name, "request_id": request_id}, status_code=413)
                await response(scope, replay, tagged_send)
            else:
                await self.app(scope, replay, tagged_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            elapsed = time.perf_counter() - started
            HTTP_REQUESTS.labels(route, str(status)).inc()
            HTTP_DURATION.labels(route).observe(elapsed)
            message = scope.get(ERROR_MESSAGE) or (too_big.message if too_big is not None else "")
            if status >= 400 or log.isEnabledFor(logging.DEBUG):
                level = logging.DEBUG if status < 400 else logging.WARNING if status >= 500 else logging.INFO
                log.log(level, "http %s %s %d%s", scope["method"], route, status, f": {message}" if message else "",
                        extra={"route": route, "status": status, "details": message,
                               "duration_ms": round(elapsed * 1e3, 3)})
            request_id_var.reset(token)
