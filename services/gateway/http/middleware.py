"""One ASGI middleware around the HTTP app: request id, body-size limit, metrics, call logs."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.context import REQUEST_ID_HEADER, request_id_from, request_id_var
from services.gateway.http.errors import RequestTooLarge
from services.gateway.http.metrics import HTTP_DURATION, HTTP_REQUESTS

log = logging.getLogger("fleet.gateway.http")


def too_large(size: int, limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"request body larger than max ({size} vs. {limit} bytes)")


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        request_id = request_id_from(headers.items())
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        limit = self.max_body_bytes
        declared = headers.get("content-length", "")
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if declared.isdigit() and int(declared) > limit:
                raise too_large(int(declared), limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(received, limit)
            return message

        async def tagged_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REQUEST_ID_HEADER.encode(), request_id.encode())]
            await send(message)

        try:
            await self.app(scope, limited_receive, tagged_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            elapsed = time.perf_counter() - started
            HTTP_REQUESTS.labels(route, str(status)).inc()
            HTTP_DURATION.labels(route).observe(elapsed)
            if status >= 400 or log.isEnabledFor(logging.DEBUG):
                log.log(logging.INFO if status >= 400 else logging.DEBUG, "http %s %s %d", scope["method"], route,
                        status, extra={"route": route, "status": status, "duration_ms": round(elapsed * 1e3, 3)})
            request_id_var.reset(token)
