"""The HTTP edge's answer to a bug: 500 with the call's own request id, never '-'."""

from __future__ import annotations

from fastapi.testclient import TestClient

from services.gateway.http.app import build_app
from services.gateway.http.context import HttpContext


def test_an_unexpected_error_quotes_the_calls_request_id() -> None:
    app = build_app(HttpContext(None, None, None, "test", "instance", 1 << 20), 1 << 20)  # type: ignore[arg-type]

    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/boom", headers={"x-request-id": "rid-123"})
    assert answer.status_code == 500
    assert answer.json()["request_id"] == "rid-123"
    assert answer.json()["message"] == "internal error; quote request id rid-123"
