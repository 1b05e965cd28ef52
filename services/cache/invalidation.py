"""Listening to the registry's invalidation channel (Redis pub/sub), reconnecting when Redis comes back.

Messages published while a listener was disconnected are lost (pub/sub keeps nothing), so each
(re)subscription after the first calls ``on_resubscribe``: the caller should then treat everything it
cached as due for revalidation. While Redis is down, a cache's own TTL is the bound on staleness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.cache.keys import Keys
from services.cache.registry_records import Invalidation
from services.common.cancelling import cancel_within

log = logging.getLogger("fleet.cache.invalidation")

RETRY_S = 0.5

class InvalidationListener:
    def __init__(self, client: aioredis.Redis, keys: Keys, on_message: Callable[[Invalidation], None],
                 on_resubscribe: Callable[[], None] | None = None) -> None:
        self._r, self._k = client, keys
        self.on_message, self.on_resubscribe = on_message, on_resubscribe
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._connected_once = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="invalidation-listener")

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self.subscribed.is_set():
                    log.warning("invalidation channel lost; caches fall back to their TTLs until Redis is back",
                                extra={"error": type(exc).__name__})
                self.subscribed.clear()
            except Exception:  # noqa: BLE001 - keep listening whatever one message did
                log.exception("invalidation listener failed; restarting")
                self.subscribed.clear()
            await asyncio.sleep(RETRY_S)

    async def _listen(self) -> None:
        pubsub = self._r.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self._k.invalidations())
            if self._connected_once and self.on_resubscribe is not None:
                self.on_resubscribe()
            self._connected_once = True
            self.subscribed.set()
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is None or message.get("type") != "message":
                    continue
                try:
                    invalidation = Invalidation.decode(message["data"])
                except (ValueError, KeyError, TypeError):
                    log.warning("ignoring a malformed invalidation message")
                    continue
                self.on_message(invalidation)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def close(self) -> None:
        if self._task is not None:
            if not await cancel_within(self._task):
                log.warning("invalidation listener still running after close; abandoned")
            self._task = None
