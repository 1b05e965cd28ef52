"""The upstream model source over real HTTP: success, 404, 500, timeout, malformed JSON, expiry."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from prometheus_client import REGISTRY

from services.cache import FleetCache
from services.common.errors import NotFound, Unavailable
from services.registry.store.records import UPSTREAM
from services.registry.store.store import Store
from services.registry.upstream import Upstream
from tests.registry.helpers import parts

ANSWER = {
    "model_id": "up/1", "workspace": "acme", "public": False, "task_type": "object-detection",
    "model_type": "yolov8", "class_names": ["circle", "rectangle"], "input": {"width": 320, "height": 320},
    "weights": {"url": "https://weights.example/up/1/model.onnx", "sha256": "2" * 64, "size_bytes": 1234},
}


class Upstreamish(BaseHTTPRequestHandler):
    hits: Counter = Counter()
    workspaces: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        url = urlparse(self.path)
        Upstreamish.hits[url.path] += 1
        Upstreamish.workspaces.append(parse_qs(url.query).get("workspace", [""])[0])
        status, body = {
            "/models/up/1": (200, json.dumps(ANSWER)),
            "/models/short/1": (200, json.dumps({**ANSWER, "model_id": "short/1", "ttl_s": 1})),
            "/models/broken/1": (500, "oops"),
            "/models/garbage/1": (200, "{not json"),
            "/models/wrong/1": (200, json.dumps(ANSWER)),  # answers for another id
            "/models/incomplete/1": (200, json.dumps({"model_id": "incomplete/1"})),
        }.get(url.path, (404, "{}"))
        if url.path == "/models/slow/1":
            time.sleep(1.5)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream_url() -> Iterator[str]:
    Upstreamish.hits.clear()
    Upstreamish.workspaces.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstreamish)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def _errors(kind: str) -> float:
    return REGISTRY.get_sample_value("fleet_registry_upstream_errors_total", {"kind": kind}) or 0.0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_upstream_answers_are_kept_and_failures_are_unavailable(store: Store, cache: FleetCache,
                                                                      upstream_url: str) -> None:
    upstream = Upstream(upstream_url, timeout_s=0.5, default_ttl_s=3600)
    reg, _ = parts(store, cache, upstream=upstream)
    try:
        record = await reg.resolve("up/1", "acme")
        assert record.artifact_uri == ANSWER["weights"]["url"] and record.spec.weights.sha256 == "2" * 64
        assert Upstreamish.workspaces == ["acme"]  # the caller's workspace is sent along
        async with store.read() as tx:
            stored = await tx.model("up/1")
        assert stored.source == UPSTREAM and stored.expires_at is not None
        await reg.resolve("up/1", "acme")
        assert Upstreamish.hits["/models/up/1"] == 1  # stored: not asked again
        with pytest.raises(NotFound):
            await reg.resolve("up/1", "someone-else")  # private upstream model: not visible to others

        for _ in range(3):  # a 404 is remembered briefly
            with pytest.raises(NotFound):
                await reg.resolve("missing/1", "acme")
        assert Upstreamish.hits["/models/missing/1"] == 1

        for model_id, kind in [("broken/1", "status"), ("slow/1", "timeout"), ("garbage/1", "malformed"),
                               ("wrong/1", "malformed"), ("incomplete/1", "malformed")]:
            before = _errors(kind)
            for _ in range(2):  # never remembered: asked again each time
                with pytest.raises(Unavailable, match="upstream model source is unavailable"):
                    await reg.resolve(model_id, "acme")
            assert Upstreamish.hits[f"/models/{model_id}"] == 2, model_id
            assert _errors(kind) == before + 2, kind
            async with store.read() as tx:
                assert await tx.model(model_id) is None

        assert (await reg.resolve("short/1", "acme")).model_id == "short/1"
        time.sleep(1.1)  # past its ttl_s: asked again
        assert (await reg.resolve("short/1", "acme")).model_id == "short/1"
        assert Upstreamish.hits["/models/short/1"] == 2
    finally:
        await reg.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_expired_copy_is_served_while_upstream_is_down(store: Store, cache: FleetCache,
                                                                 upstream_url: str) -> None:
    reg, _ = parts(store, cache, upstream=Upstream(upstream_url, timeout_s=0.5))
    try:
        await reg.resolve("short/1", "acme")
        time.sleep(1.1)
        reg.upstream = Upstream("http://127.0.0.1:9", timeout_s=0.5)  # nothing listens there
        assert (await reg.resolve("short/1", "acme")).model_id == "short/1"
    finally:
        await reg.close()
