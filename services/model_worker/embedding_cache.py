"""Image embeddings kept on a worker, so a second prompt on the same image skips its encoder.

Keyed by (model id, model version, the image's content hash); bounded in bytes (least recently used out
first); a model's entries go when the model is unloaded or evicted. Computations in flight are shared: two
requests for the same new image run its encoder once.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from prometheus_client import Counter, Gauge

from services.model_worker.images import ImageInput

CACHE_LOOKUPS = Counter("fleet_worker_embedding_cache_lookups_total",
                        "Image-embedding cache lookups by promptable-segmentation requests, by result (hit, miss).",
                        ["result"])
for _result in ("hit", "miss"):  # both series from the start (0 until the first promptable request)
    CACHE_LOOKUPS.labels(_result)
CACHE_BYTES = Gauge("fleet_worker_embedding_cache_bytes", "Bytes of image embeddings held in the worker's cache.")
CACHE_ENTRIES = Gauge("fleet_worker_embedding_cache_entries", "Image embeddings held in the worker's cache.")

Key = tuple[str, str, str]  # model id, model version (sha256), image hash
T = TypeVar("T")


def image_hash(image: ImageInput) -> str:
    """The content hash of an image as sent (encoded bytes, or raw pixels with their geometry)."""
    digest = hashlib.sha256()
    if image.raw is not None:
        r = image.raw
        digest.update(f"raw:{r.width}x{r.height}x{r.channels}:{int(r.bgr)}:".encode())
        digest.update(r.data)
    else:
        digest.update(image.encoded or b"")
    return digest.hexdigest()


@dataclass
class _Entry(Generic[T]):
    value: T
    size: int


class EmbeddingCache(Generic[T]):
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Key, _Entry[T]] = OrderedDict()
        self._pending: dict[Key, asyncio.Future[tuple[T, int]]] = {}
        self.bytes = 0

    async def get(self, key: Key, compute: Callable[[], Awaitable[tuple[T, int]]]) -> tuple[T, bool]:
        """The value for ``key`` and whether it was cached; ``compute`` returns (value, its bytes) on a miss."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            CACHE_LOOKUPS.labels("hit").inc()
            return entry.value, True
        pending = self._pending.get(key)
        if pending is not None:  # another request is computing it: share its result
            CACHE_LOOKUPS.labels("hit").inc()
            value, _ = await asyncio.shield(pending)
            return value, True
        CACHE_LOOKUPS.labels("miss").inc()
        future: asyncio.Future[tuple[T, int]] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            value, size = await compute()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a lone computation's failure is the caller's, not logged twice
            raise
        finally:
            self._pending.pop(key, None)
        future.set_result((value, size))
        self._put(key, value, size)
        return value, False

    def _put(self, key: Key, value: T, size: int) -> None:
        if size > self.max_bytes:
            return
        self._entries[key] = _Entry(value, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self.bytes -= old.size
        self._gauge()

    def forget_model(self, model_id: str) -> None:
        for key in [k for k in self._entries if k[0] == model_id]:
            self.bytes -= self._entries.pop(key).size
        self._gauge()

    def holds(self, key: Key) -> bool:
        return key in self._entries

    def _gauge(self) -> None:
        CACHE_BYTES.set(self.bytes)
        CACHE_ENTRIES.set(len(self._entries))


def nbytes(value: Any) -> int:
    return int(getattr(value, "nbytes", 0))
