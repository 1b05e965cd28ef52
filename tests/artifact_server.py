"""A real local HTTP server for artifact and image-URL tests (loopback only)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ArtifactServer:
    """Serves ``files`` (path -> bytes); can be slow, held until released, redirect, fail the first N GETs, and
    counts GETs."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.gets: Counter[str] = Counter()
        self.fail_first: dict[str, int] = {}
        self.redirects: dict[str, str] = {}  # path -> Location of a 302
        self.delay_s = 0.0
        self.chunk_delay_s = 0.0
        self.gate: threading.Event | None = None  # when set here, every GET waits (60 s at most) until it is set
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                server.gets[self.path] += 1
                if server.gate is not None:
                    server.gate.wait(60)
                time.sleep(server.delay_s)
                if self.path in server.redirects:
                    self.send_response(302)
                    self.send_header("Location", server.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if server.fail_first.get(self.path, 0) > 0:
                    server.fail_first[self.path] -= 1
                    self.send_error(503)
                    return
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for start in range(0, len(body), 65536):
                    self.wfile.write(body[start : start + 65536])
                    time.sleep(server.chunk_delay_s)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def start(self) -> ArtifactServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def artifact_server() -> Iterator[ArtifactServer]:
    server = ArtifactServer().start()
    try:
        yield server
    finally:
        server.stop()
