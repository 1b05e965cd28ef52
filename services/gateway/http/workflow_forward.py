"""The HTTP workflow routes on a public gateway whose engine runs in a process of its own: each request goes to
the engine's HTTP API as it came (body, query, ``Authorization``, ``X-Request-Timeout``, the request id and trace
context), and its answer comes back as it is (the engine authenticates the caller and writes its own errors).
Nothing is decoded here. Failing to reach the engine is a 503 with a message of its own (never an address).

The routes are those of ``services.gateway.http.workflows`` (include this router where that one would be).
"""

from __future__ import annotations

import logging
import ssl

import httpx
from fastapi import APIRouter, Request, Response

from services.common import tracing
from services.common.context import REQUEST_ID_HEADER, current_request_id
from services.common.errors import DeadlineExceeded, Unavailable
from services.common.tls import ClientTls

log = logging.getLogger("fleet.gateway.http")

PATHS = (("/workflows/run", "POST"), ("/infer/workflows", "POST"), ("/{workspace}/workflows/{workflow_id}", "POST"),
         ("/infer/workflows/{workspace}/{workflow_id}", "POST"), ("/workflows/validate", "POST"),
         ("/workflows/blocks/describe", "POST"), ("/workflows/definition/schema", "GET"))
FORWARDED_HEADERS = ("authorization", "content-type", "x-request-timeout")
ANSWER_HEADERS = ("content-type",)
UNAVAILABLE = "the workflow engine is unavailable; retry shortly"


def client_context(tls: ClientTls | None) -> ssl.SSLContext | bool:
    """What the HTTP client verifies the engine with (and presents to it): the fleet's internal TLS, if on."""
    if tls is None:
        return False
    context = ssl.create_default_context(cafile=tls.ca or None)
    if tls.cert:
        context.load_cert_chain(tls.cert, tls.key)
    return context


class HttpForwarder:
    """One keep-alive HTTP client to the engine's HTTP API."""

    def __init__(self, address: str, default_timeout_s: float, tls: ClientTls | None = None) -> None:
        scheme = "https" if tls is not None else "http"
        self.base_url = f"{scheme}://{address}"
        self.default_timeout_s = default_timeout_s
        self.server_name = tls.server_name if tls is not None else ""
        self.client = httpx.AsyncClient(base_url=self.base_url, verify=client_context(tls) if tls else False,
                                        limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
                                        timeout=None)

    async def forward(self, request: Request) -> Response:
        headers = {k: v for k in FORWARDED_HEADERS if (v := request.headers.get(k)) is not None}
        headers[REQUEST_ID_HEADER] = current_request_id()
        if tracing.ACTIVE:
            headers.update(dict(tracing.headers()))
        timeout = _timeout_s(request.headers.get("x-request-timeout", "")) or self.default_timeout_s
        extensions = {"sni_hostname": self.server_name} if self.server_name else None
        try:
            answer = await self.client.request(
                request.method, request.url.path, params=request.url.query or None, content=await request.body(),
                headers=headers, timeout=timeout + 1.0, extensions=extensions)
        except httpx.TimeoutException:
            raise DeadlineExceeded("the workflow run's deadline passed; send a longer timeout") from None
        except httpx.HTTPError as exc:
            log.warning("call to the workflow engine failed", extra={"peer": "workflow engine",
                                                                       "details": str(exc)[:500]})
            raise Unavailable(UNAVAILABLE) from None
        return Response(answer.content, status_code=answer.status_code,
                        headers={k: v for k in ANSWER_HEADERS if (v := answer.headers.get(k)) is not None})

    async def close(self) -> None:
        await self.client.aclose()


def _timeout_s(value: str) -> float | None:
    try:
        return max(0.001, float(value)) if value else None
    except ValueError:
        return None


def router(forwarder: HttpForwarder) -> APIRouter:
    api = APIRouter(tags=["Workflows"])

    async def forward(request: Request) -> Response:
        return await forwarder.forward(request)

    for path, method in PATHS:
        api.add_api_route(path, forward, methods=[method], summary="Served by the workflow engine",
                          include_in_schema=True)
    return api
