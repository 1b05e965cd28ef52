"""Model artifacts: fetched from file:// or http(s)://, sha256-verified, cached on disk.

Every URI (and every redirect hop of a download) is first checked against the worker's
``ArtifactPolicy`` (schemes, local roots, download hosts). Cached files are content-addressed (``<cache>/sha256/<digest>.onnx``), so no model id
or URI ever becomes part of a path. Downloads stream into a temporary file in the same
directory, are verified, then atomically renamed; a per-digest lock (asyncio within a
process, ``flock`` across processes sharing the directory) makes concurrent fetches of
one artifact happen once. Nothing that fails verification is served or kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
import httpx

from services.common.errors import InvalidArgument, ModelPackageError, Unavailable
from services.common.redact import redact_url, redact_urls
from services.model_worker.artifact_policy import ArtifactPolicy
from services.model_worker.metrics import ARTIFACT_DOWNLOADS

log = logging.getLogger("fleet.worker.artifacts")

_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _mismatch(where: str, got: str, want: str) -> ModelPackageError:
    return ModelPackageError(
        f"the artifact {where} has sha256 {got}, but the model's descriptor expects {want}; "
        "the file is corrupt or the registry entry is stale"
    )


class ArtifactStore:
    def __init__(self, cache_dir: str | Path, timeout_s: float = 300.0, retries: int = 3,
                 backoff_s: float = 0.5, policy: ArtifactPolicy | None = None) -> None:
        self.dir = Path(cache_dir) / "sha256"
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self.policy = policy or ArtifactPolicy()
        self._locks: dict[str, asyncio.Lock] = {}
        self._client: httpx.AsyncClient | None = None  # one client, so downloads share its setup and connections

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            timeout = httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s))
            self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=True, trust_env=False,
                                             event_hooks={"request": [self._vet_request]})
        return self._client

    async def _vet_request(self, request: httpx.Request) -> None:
        """Every request of a download, redirect hops included, goes through the artifact policy."""
        self.policy.check_url(request.url.scheme, request.url.host, str(request.url))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def cached_path(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise InvalidArgument("sha256 must be 64 lowercase hex characters")
        return self.dir / f"{sha256}.onnx"

    async def fetch(self, uri: str, sha256: str) -> Path:
        """A local path holding exactly the bytes whose digest is ``sha256``."""
        target = self.cached_path(sha256)
        local = self.policy.local_path(uri)
        if local is not None:
            return await self._local(local, sha256)
        lock = self._locks.setdefault(sha256, asyncio.Lock())
        async with lock, self._process_lock(target):
            if target.exists():
                if await asyncio.to_thread(sha256_file, target) == sha256:
                    ARTIFACT_DOWNLOADS.labels("cached").inc()
                    return target
                log.warning("cached artifact failed verification; fetching again", extra={"sha256": sha256})
                target.unlink(missing_ok=True)
            await self._download(uri, sha256, target)
            return target

    async def _local(self, path: Path, sha256: str) -> Path:
        if not path.is_file():
            log.warning("artifact file missing", extra={"path": str(path)})
            raise ModelPackageError("the model's artifact file does not exist on this worker")
        got = await asyncio.to_thread(sha256_file, path)
        if got != sha256:
            log.warning("artifact file failed verification", extra={"path": str(path), "sha256": got})
            ARTIFACT_DOWNLOADS.labels("rejected").inc()
            raise _mismatch("file", got, sha256)
        ARTIFACT_DOWNLOADS.labels("local").inc()
        return path

    @contextlib.asynccontextmanager
    async def _process_lock(self, target: Path) -> AsyncIterator[None]:
        """An exclusive flock on ``<target>.lock``, polled so the event loop never blocks."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{target}.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            deadline = time.monotonic() + self.timeout_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise Unavailable(f"timed out waiting for another process to fetch {target.name}") from None
                    await asyncio.sleep(0.05)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    async def _download(self, uri: str, sha256: str, target: Path) -> None:
        attempt = 0
        while True:
            try:
                await self._download_once(uri, sha256, target)
                ARTIFACT_DOWNLOADS.labels("downloaded").inc()
                return
            except (httpx.TransportError, _RetryableStatus) as exc:
                attempt += 1
                if attempt > self.retries:
                    ARTIFACT_DOWNLOADS.labels("failed").inc()
                    log.warning("artifact download failed", extra={"attempts": attempt,
                                                                   "error": redact_urls(str(exc))[:500],
                                                                   "uri": redact_url(uri)[:500]})
                    detail = str(exc) if isinstance(exc, _RetryableStatus) else type(exc).__name__
                    raise Unavailable(f"could not download the model artifact after {attempt} attempts "
                                      f"({detail})") from None
                delay = self.backoff_s * (2 ** (attempt - 1))
                log.warning("artifact download failed; retrying", extra={"attempt": attempt, "delay_s": delay,
                                                                         "error": redact_urls(str(exc))[:500]})
                await asyncio.sleep(delay)
            except ModelPackageError:
                ARTIFACT_DOWNLOADS.labels("rejected").inc()
                raise

    async def _download_once(self, uri: str, sha256: str, target: Path) -> None:
        fd, tmp_name = tempfile.mkstemp(prefix=".download-", dir=self.dir)
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                async with self._http().stream("GET", uri) as response:
                    if response.status_code >= 500 or response.status_code == 429:
                        raise _RetryableStatus(f"HTTP {response.status_code}")
                    if response.status_code != 200:
                        raise ModelPackageError(
                            f"artifact download answered HTTP {response.status_code}; check the artifact URI"
                        )
                    async for chunk in response.aiter_bytes(_CHUNK):
                        digest.update(chunk)
                        await asyncio.to_thread(out.write, chunk)
                out.flush()
                os.fsync(out.fileno())
            got = digest.hexdigest()
            if got != sha256:
                raise _mismatch("download", got, sha256)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)


class _RetryableStatus(Exception):
    """A transient HTTP answer (5xx, 429) worth retrying."""
